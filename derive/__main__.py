"""``python -m derive``: the same as the ``derive`` command."""

from derive.cli import run

run()
