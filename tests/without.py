"""Run derive as if optional packages were not installed: ``python tests/without.py torch,hypothesis CODE``.

The packages named are hidden from the import system (``import torch`` raises ModuleNotFoundError and
``importlib.util.find_spec("torch")`` answers None, as in an environment without them); then CODE runs.
"""

import importlib.machinery
import sys

HIDDEN: set[str] = set()


class _Hide(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            return None
        return super().find_spec(name, path, target)


if __name__ == "__main__":
    HIDDEN.update(sys.argv[1].split(","))
    sys.meta_path[:] = [_Hide if finder is importlib.machinery.PathFinder else finder for finder in sys.meta_path]
    exec(compile(sys.argv[2], "<without>", "exec"))  # noqa: S102 - the test's own code, run without the packages
