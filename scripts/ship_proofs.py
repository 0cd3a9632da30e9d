"""Prove the tensor rules of the models derive's tests and examples read, and ship the proofs with derive
(derive/tensor/proofs.json), so that a command reading a model of the same configurations proves nothing anew.

Run: ``.venv/bin/python scripts/ship_proofs.py`` (minutes; rerun when an op's rule changes).
"""

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["DERIVE_CACHE"] = tempfile.mkdtemp()

import derive
from derive.sources.torch_module import load_module
from derive.tensor import proof
from tests.models import cnn_zoo, graph_zoo, modern_zoo, rnn_zoo


def main() -> None:
    proof._shipped.cache_clear()
    proof.SHIPPED = Path(os.environ["DERIVE_CACHE"]) / "none.json"
    networks = [derive.examples.seed(), derive.load_spec(ROOT / "examples" / "classic_2_2_2.toml")]
    x = json.loads((ROOT / "examples" / "attention_x.json").read_text())
    for name in ("OneHeadBlock", "TwoHeadBlock", "TorchMHABlock"):  # the attention chapter's blocks
        block = load_module(f"{ROOT / 'examples' / 'attention_block.py'}:{name}")
        networks.append(derive.from_torch(block, loss="cross_entropy", x=x, y=[2]))
    for zoo in (modern_zoo, graph_zoo, cnn_zoo, rnn_zoo):
        for name, (x, y, loss) in zoo.CASES.items():
            networks.append(derive.from_torch(getattr(zoo, name)(), loss=loss, x=x, y=y))
    for network in networks:
        failed = [p.statement() for p in proof.prove(network) if not p.holds]
        if failed:
            raise SystemExit(f"a rule does not hold: {failed[0]}")
    known = json.loads(proof._user_cache().read_text())
    target = ROOT / "derive" / "tensor" / "proofs.json"
    target.write_text(json.dumps(known, sort_keys=True, indent=0) + "\n")
    print(f"{len(known)} proofs written to {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
