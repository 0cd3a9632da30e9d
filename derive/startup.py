"""Ctrl-C while the ``derive`` command is still importing: one line and exit status 130, as later on.

`derive.cli.main` turns a KeyboardInterrupt into ``derive: interrupted`` and status 130, but the first second
of the command is spent importing (SymPy, NumPy, derive itself), before ``main`` runs, where Python would print
a traceback. The imports of the package and of the command line run inside `interruptible_start`. Only the
command itself exits there (``derive …`` or ``python -m derive …``): in a user's program the interrupt goes on
as usual.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

#: the exit status of an interrupted command (128 + SIGINT, what a shell reports), and its one line
INTERRUPTED = 130
INTERRUPTED_MESSAGE = "derive: interrupted"


def is_the_command() -> bool:
    """Whether this process is the ``derive`` command (the console script or ``python -m derive``)."""
    return sys.orig_argv[1:3] == ["-m", "derive"] or os.path.basename(sys.argv[0]).removesuffix(".exe") == "derive"


@contextmanager
def interruptible_start() -> Iterator[None]:
    """Run imports; a Ctrl-C during them ends the command with one line and status 130."""
    try:
        yield
    except KeyboardInterrupt:
        if not is_the_command():
            raise
        print(INTERRUPTED_MESSAGE, file=sys.stderr, flush=True)
        os._exit(INTERRUPTED)
