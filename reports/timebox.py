"""A wall-clock budget for one message's processing (SECURITY rule 7)."""

from __future__ import annotations

import signal
import threading
import time
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
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay > 0:
            # Someone else's alarm was running (django-q2 times each task with signal.alarm):
            # give it back what is left of it, or fire it now if it is due, rather than cancel it.
            left = outer_delay - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), outer_interval)
