"""Models the tests read: graph models (graph_zoo), recurrent models (rnn_zoo)."""

import importlib.util
from pathlib import Path


def example(name: str):
    """A module of examples/, loaded from its file (the shipped example is the one tested)."""
    path = Path(__file__).resolve().parents[2] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
