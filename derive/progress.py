"""Progress on standard error for work that takes more than a second, only when stderr is a terminal.

Library code marks its stages with `stage` (cheap: it only stores a string); the command line wraps a
command in `Progress`, which after a delay starts a thread that redraws one status line with the current
stage and the elapsed time, and clears it at the end. Piped or redirected output never gets it.

>>> stage("reverse mode")
>>> current_stage()
'reverse mode'
"""

from __future__ import annotations

import os
import sys
import threading
import time
from types import TracebackType
from typing import TextIO

_stage = ""

#: Seconds before the status line appears (``DERIVE_PROGRESS_AFTER`` overrides it).
DELAY_S = 1.0


def stage(name: str) -> None:
    """Name the stage of work now running (shown by an active `Progress`)."""
    global _stage
    _stage = name


def current_stage() -> str:
    return _stage


class Progress:
    """Show ``label: stage … 2.4 s`` on ``stream`` while the ``with`` block runs longer than a delay."""

    def __init__(self, label: str, stream: TextIO | None = None, *, delay_s: float | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        env = os.environ.get("DERIVE_PROGRESS_AFTER")
        self.delay_s = delay_s if delay_s is not None else (float(env) if env else DELAY_S)
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown = False

    def __enter__(self) -> Progress:
        stage("")
        if _is_terminal(self.stream):
            self._start = time.monotonic()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def _run(self) -> None:
        if self._done.wait(self.delay_s):
            return
        while True:
            elapsed = time.monotonic() - self._start
            what = f": {_stage}" if _stage else ""
            self.stream.write(f"\r\033[K{self.label}{what} … {elapsed:.1f} s")
            self.stream.flush()
            self._shown = True
            if self._done.wait(0.25):
                return


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
