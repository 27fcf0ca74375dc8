"""A wall-clock budget for one message's processing (SECURITY rule 7)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ProcessingTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ProcessingTimeout after `seconds` of wall-clock time.

    Uses SIGALRM, so it only applies in the main thread (q-cluster workers, the CLI, smtpd's
    sync mode); elsewhere it is a no-op and the q-cluster's own task timeout is the backstop.
    """
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _expire(signum: int, frame: object) -> None:
        raise ProcessingTimeout(f"processing took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
