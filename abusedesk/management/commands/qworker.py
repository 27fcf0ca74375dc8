"""Run the django-q2 cluster so that one SIGTERM/SIGINT stops it in about a second.

`manage.py qcluster` hangs when a supervisor (honcho, systemd) signals its whole process group
(django-q2 issue #346), but stops cleanly when only its main process is signalled. This wrapper
starts it in its own session, forwards the signal to the main pid only, and kills it if it has
not stopped within the grace period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run the django-q2 cluster (manage.py qcluster) with clean shutdown on SIGTERM/SIGINT."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--grace", type=float, default=4.0, help="seconds before SIGKILL after a stop signal")

    def handle(self, *args: Any, **options: Any) -> None:
        child = subprocess.Popen(
            [sys.executable, str(settings.BASE_DIR / "manage.py"), "qcluster"], start_new_session=True
        )
        stopping: list[float] = []

        def forward(signum: int, frame: object) -> None:
            if not stopping:
                stopping.append(time.monotonic())
                child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        while child.poll() is None:
            if stopping and time.monotonic() - stopping[0] > options["grace"]:
                child.kill()
                break
            time.sleep(0.1)
        child.wait()
        # The cluster's worker processes share its session; make sure none outlives it.
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
