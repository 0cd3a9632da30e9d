"""Where the compiled gradient's time goes, against autograd's forward + backward: the floor its kernels set.

For the models of benchmarks/tensor_form.py (LeNet-5, the 8-channel conv net, the d_model-16 attention block,
ResNet-20), at batch 1 and 64, on one thread, each in a fresh process:

- autograd's forward + backward and the compiled gradient (``verify.compile(model, "torch", "matrix")``), each
  timed alone (medians of consecutive calls);
- the time the compiled gradient spends inside torch's kernels: the self time of every ``aten::`` op under
  torch's profiler (which adds its own cost per op, so an upper bound), and the same less what the profiler
  records for an op that does almost nothing (``neg`` of one number) times the number of recorded ops (a lower
  bound). No program that calls the same kernels can take less than the lower bound;
- minor page faults per call of each (``getrusage``): memory the kernels touch for the first time.

Run: ``python benchmarks/compiled_floor.py`` (``--json`` for machine output).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from tensor_form import MODELS  # the same modules, one definition

CASES = [("LeNet-5", "lenet", "LeNet5", (1, 32, 32), "cross_entropy", 10),
         ("conv net, 8 channels", "models", "ConvNet8", (1, 8, 8), "mse", 1),
         ("attention block, d_model 16", "models", "Attention16", (5, 16), "cross_entropy", 3),
         ("ResNet-20", "models", "ResNet20", (3, 32, 32), "cross_entropy", 10)]

PROBE = textwrap.dedent('''
    import importlib, json, resource, statistics, sys, time
    import numpy as np, torch
    from torch.profiler import ProfilerActivity, profile
    folder, root, file, cls, shape, loss, classes, batch = sys.argv[1:9]
    sys.path[:0] = [folder, root]
    torch.set_num_threads(1)
    import derive, verify
    shape, classes, batch = tuple(json.loads(shape)), int(classes), int(batch)
    module = getattr(importlib.import_module(file), cls)().double()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *shape))
    y = rng.integers(0, classes, batch) if loss == "cross_entropy" else rng.standard_normal((batch, 1))
    model = derive.from_torch(module, loss=loss, x=x, y=y)
    fn = verify.compile(model, backend="torch", form="matrix")
    args = verify.arguments(model, "torch")
    params = list(module.parameters())

    def autograd():
        for p in params:
            p.grad = None
        out = module(args[0])
        value = torch.nn.functional.cross_entropy(out, args[1]) if loss == "cross_entropy" else \\
            torch.nn.functional.mse_loss(out, args[1].reshape(out.shape))
        value.backward()

    def ours():
        fn(*args)

    calls = 40 if batch == 1 else 5

    def measure(f):
        f(); f()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        times = []
        for _ in range(calls):
            start = time.perf_counter(); f(); times.append(time.perf_counter() - start)
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / calls
        return statistics.median(times), faults

    (auto_s, auto_faults), (ours_s, ours_faults) = measure(autograd), measure(ours)
    with profile(activities=[ProfilerActivity.CPU]) as p:
        for _ in range(calls):
            ours()
    ops = [e for e in p.key_averages() if e.key.startswith("aten::")]
    kernels = sum(e.self_cpu_time_total for e in ops) / calls / 1e6
    events = sum(e.count for e in ops) / calls
    one = torch.ones(1, dtype=torch.float64)  # what the profiler records for an op that does almost nothing
    with profile(activities=[ProfilerActivity.CPU]) as q:
        for _ in range(2000):
            torch.ops.aten.neg.default(one)
    per_event = sum(e.self_cpu_time_total for e in q.key_averages() if e.key.startswith("aten::")) / 2000 / 1e6
    print(json.dumps({"autograd_s": auto_s, "ours_s": ours_s, "kernels_s": kernels,
                      "kernels_less_events_s": kernels - events * per_event,
                      "autograd_faults": auto_faults, "ours_faults": ours_faults}))
''')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    (folder / "models.py").write_text(MODELS)
    (folder / "lenet.py").write_text((ROOT / "examples" / "lenet5.py").read_text())
    rows = []
    for label, file, cls, shape, loss, classes in CASES:
        for batch in (1, 64):
            result = subprocess.run([sys.executable, "-c", PROBE, str(folder), str(ROOT), file, cls, json.dumps(shape),
                                     loss, str(classes), str(batch)], capture_output=True, text=True, check=True)
            row = {"model": label, "batch": batch, **json.loads(result.stdout.strip().splitlines()[-1])}
            rows.append(row)
            if not args.json:
                a = row["autograd_s"]
                print(f"{label:30} batch {batch:2}  autograd {a * 1e3:8.3f} ms  compiled {row['ours_s'] / a:.2f}×  "
                      f"its kernels {row['kernels_s'] / a:.2f}× (less the profiler's cost per op "
                      f"{row['kernels_less_events_s'] / a:.2f}×)  page faults per call {row['autograd_faults']:9.0f} "
                      f"· {row['ours_faults']:9.0f}")
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
