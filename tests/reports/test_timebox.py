"""The per-message time budget, and the q-cluster's own task alarm around it."""

from __future__ import annotations

import signal
import time

import pytest

from reports.timebox import ProcessingTimeout, time_limit


@pytest.fixture
def outer_alarm():
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    yield fired
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def test_work_over_budget_is_interrupted():
    with pytest.raises(ProcessingTimeout, match="longer than 0.05 s"), time_limit(0.05):
        time.sleep(1)


def test_an_outer_alarm_keeps_its_remaining_time(outer_alarm):
    signal.setitimer(signal.ITIMER_REAL, 5)
    with time_limit(1):
        time.sleep(0.01)
    remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    assert 4.5 < remaining < 5
    assert outer_alarm == []


def test_an_outer_alarm_that_fell_due_inside_fires_on_exit(outer_alarm):
    signal.setitimer(signal.ITIMER_REAL, 0.02)
    with time_limit(1):
        time.sleep(0.05)
    time.sleep(0.05)
    assert outer_alarm == [signal.SIGALRM]
