"""The tensor form against a plain torch script, and the compiled gradient against autograd.

For each model (LeNet-5 at batch 2 and 64, a conv net with 8 channels on 8×8 images, an attention block with
d_model 16, a ResNet-20 for CIFAR with BatchNorm in train mode at batch 8, a 1,000-1,000-1 MLP), in fresh
processes, side by side:

- ``derive grads --torch … --format json --form tensor`` (torch's import, the model's export, the program,
  NumPy's values, the JSON), wall time;
- the yardstick: a plain torch script that loads the same module and data, computes every gradient with
  float64 autograd and prints them as JSON (torch's import, the model's construction and the JSON writing
  included), wall time;
- every gradient of the first against the second, relative to each tensor's largest entry;
- the compiled gradient (``verify.compile(model, "torch", "matrix")``) against autograd's forward + backward
  at batch 64 and 1: interleaved medians on one thread, as benchmarks/lenet.py measures.

Run: ``python benchmarks/tensor_form.py`` (``--quick``: the small models only; ``--json``: machine output).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

MODELS = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class ConvNet8(nn.Module):
        """8 channels on 8×8 images: two 3×3 convolutions, ReLU, max pooling, a linear head (723 parameters)."""

        def __init__(self):
            super().__init__()
            torch.manual_seed(1)
            self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
            self.conv2 = nn.Conv2d(8, 7, 3, padding=1)
            self.fc = nn.Linear(7 * 4 * 4, 1)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
            return self.fc(x.flatten(1))


    class Attention16(nn.Module):
        """A transformer encoder block with d_model 16, 2 heads, feed-forward 64, a head over the mean token."""

        def __init__(self):
            super().__init__()
            torch.manual_seed(2)
            self.enc = nn.TransformerEncoderLayer(16, 2, dim_feedforward=64, dropout=0.0, batch_first=True)
            self.head = nn.Linear(16, 3)

        def forward(self, x):
            return self.head(self.enc(x).mean(dim=1))


    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = nn.Sequential()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return F.relu(out + self.shortcut(x))


    class ResNet20(nn.Module):
        """He et al.'s ResNet-20 for CIFAR-10 in plain torch.nn: 3 stages of 3 basic blocks, 16/32/64 channels."""

        def __init__(self):
            super().__init__()
            torch.manual_seed(3)
            self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn = nn.BatchNorm2d(16)
            layers, cin = [], 16
            for cout, stride in ((16, 1), (32, 2), (64, 2)):
                for k in range(3):
                    layers.append(Block(cin, cout, stride if k == 0 else 1))
                    cin = cout
            self.layers = nn.Sequential(*layers)
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            out = self.layers(F.relu(self.bn(self.conv(x))))
            return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


    class MLP1M(nn.Module):
        """1,000-1,000-1 with tanh: a chain of a million parameters."""

        def __init__(self):
            super().__init__()
            torch.manual_seed(4)
            self.net = nn.Sequential(nn.Linear(1000, 1000), nn.Tanh(), nn.Linear(1000, 1))

        def forward(self, x):
            return self.net(x)
''')

YARDSTICK = textwrap.dedent('''
    import json, sys
    import numpy as np
    import torch
    sys.path.insert(0, sys.argv[1])
    import importlib
    module = getattr(importlib.import_module(sys.argv[2]), sys.argv[3])().double()
    x, y = torch.from_numpy(np.load(sys.argv[4])), torch.from_numpy(np.load(sys.argv[5]))
    out = module(x.double() if x.is_floating_point() else x)
    loss = torch.nn.functional.cross_entropy(out, y) if sys.argv[6] == "cross_entropy" else \\
        torch.nn.functional.mse_loss(out, y.double().reshape(out.shape))
    loss.backward()
    print(json.dumps({"loss": loss.item(), "parameters": [
        {"torch": k, "gradient": p.grad.tolist()} for k, p in module.named_parameters()]}))
''')


def _cases(quick: bool) -> list[tuple[str, str, str, tuple, str, int, str]]:
    """(label, file, class, x shape, loss, classes, target kind)."""
    cases = [
        ("LeNet-5, batch 2", "lenet", "LeNet5", (2, 1, 32, 32), "cross_entropy", 10),
        ("LeNet-5, batch 64", "lenet", "LeNet5", (64, 1, 32, 32), "cross_entropy", 10),
        ("conv net, 8 channels, 8×8, batch 4", "models", "ConvNet8", (4, 1, 8, 8), "mse", 1),
        ("attention block, d_model 16, batch 2", "models", "Attention16", (2, 5, 16), "cross_entropy", 3),
    ]
    if not quick:
        cases += [("ResNet-20, 3×32×32, batch 8, BatchNorm in train mode", "models", "ResNet20", (8, 3, 32, 32),
                   "cross_entropy", 10),
                  ("MLP 1,000-1,000-1, batch 4", "models", "MLP1M", (4, 1000), "mse", 1)]
    return cases


def _run(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command[:6])} …: {result.stderr.strip()[-2000:]}")
    return time.perf_counter() - start, result.stdout


def _max_error(ours: dict, theirs: dict) -> float:
    worst = 0.0
    reference = {p["torch"]: np.asarray(p["gradient"]) for p in theirs["parameters"]}
    for p in ours["parameters"]:
        expected = reference[p["torch"]]
        got = np.asarray(p["gradient"]).reshape(expected.shape)
        worst = max(worst, float(np.max(np.abs(got - expected)) / max(np.max(np.abs(expected)), 1e-300)))
    return worst


def _compiled(file: str, cls: str, shape: tuple, loss: str, classes: int, folder: Path) -> dict[str, float]:
    """The compiled gradient's time over autograd's forward + backward, at batch 64 and 1 (interleaved medians)."""
    code = textwrap.dedent(f'''
        import json, statistics, sys, time
        import numpy as np, torch
        sys.path.insert(0, {str(folder)!r}); sys.path.insert(0, {str(ROOT)!r})
        torch.set_num_threads(1)
        import importlib, derive, verify
        module = getattr(importlib.import_module({file!r}), {cls!r})().double()
        ratios = {{}}
        for batch in (64, 1):
            rng = np.random.default_rng(0)
            x = rng.standard_normal((batch, *{shape[1:]!r}))
            y = rng.integers(0, {classes}, batch) if {loss!r} == "cross_entropy" else rng.standard_normal((batch, 1))
            model = derive.from_torch(module, loss={loss!r}, x=x, y=y)
            fn = verify.compile(model, backend="torch", form="matrix")
            args = verify.arguments(model, "torch")
            params = dict(module.named_parameters())
            def autograd():
                for p in params.values():
                    p.grad = None
                out = module(args[0])
                value = torch.nn.functional.cross_entropy(out, args[1]) if {loss!r} == "cross_entropy" else \\
                    torch.nn.functional.mse_loss(out, args[1].reshape(out.shape))
                value.backward()
            ours, theirs = [], []
            for _ in range(3):
                fn(*args); autograd()
            for _ in range(15 if batch == 64 else 60):
                t = time.perf_counter(); fn(*args); ours.append(time.perf_counter() - t)
                t = time.perf_counter(); autograd(); theirs.append(time.perf_counter() - t)
            ratios[batch] = statistics.median(ours) / statistics.median(theirs)
        print(json.dumps(ratios))
    ''')
    _, out = _run([PYTHON, "-c", code])
    return {int(k): v for k, v in json.loads(out).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-compiled", action="store_true", help="skip the compiled gradient's timing")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    (folder / "models.py").write_text(MODELS)
    (folder / "lenet.py").write_text((ROOT / "examples" / "lenet5.py").read_text())
    (folder / "yardstick.py").write_text(YARDSTICK)
    rows = []
    for label, file, cls, shape, loss, classes in _cases(args.quick):
        rng = np.random.default_rng(0)
        x = rng.standard_normal(shape).round(3)
        y = rng.integers(0, classes, shape[0]) if loss == "cross_entropy" else rng.standard_normal((shape[0], 1))
        np.save(folder / "x.npy", x)
        np.save(folder / "y.npy", y)
        derive_s, out = _run([PYTHON, "-m", "derive", "grads", "--torch", f"{folder / file}.py:{cls}", "--x",
                              str(folder / "x.npy"), "--y", str(folder / "y.npy"), "--loss", loss, "--format", "json",
                              "--form", "tensor"])
        ours = json.loads(out)
        torch_s, out = _run([PYTHON, str(folder / "yardstick.py"), str(folder), file, cls, str(folder / "x.npy"),
                             str(folder / "y.npy"), loss])
        theirs = json.loads(out)
        row = {"model": label, "parameters": sum(np.asarray(p["gradient"]).size for p in theirs["parameters"]),
               "derive_s": derive_s, "torch_s": torch_s, "ratio": derive_s / torch_s,
               "max_error": _max_error(ours, theirs)}
        if not args.no_compiled and "batch 64" not in label:
            row["compiled"] = _compiled(file, cls, shape, loss, classes, folder)
        rows.append(row)
        if not args.json:
            compiled = row.get("compiled")
            extra = f"  compiled/autograd: batch 64 {compiled[64]:.2f}×, batch 1 {compiled[1]:.2f}×" if compiled else ""
            print(f"{label:55s} {row['parameters']:>9,} params  derive {derive_s:6.2f} s  torch {torch_s:5.2f} s  "
                  f"{row['ratio']:.2f}×  max error {row['max_error']:.1e}{extra}", flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
