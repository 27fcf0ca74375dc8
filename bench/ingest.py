#!/usr/bin/env python3
# ruff: noqa: E402  (sys.path is fixed before the imports, see below)
"""Ingest benchmark: generated report mails through the real intake paths and a real q-cluster.

    .venv/bin/python bench/ingest.py                       # 2000 mails, SQLite and PostgreSQL, CLI and webhook
    .venv/bin/python bench/ingest.py --db postgres --path webhook --workers 2,3,4 --broker orm,redis --repeat 3
    .venv/bin/python bench/ingest.py --big --n 0           # only the 25 MB message
    .venv/bin/python bench/ingest.py --profile 500         # where the time goes, in one process

For every combination it starts from a fresh database (SQLite under a temporary ABUSEDESK_VAR_DIR,
or a PostgreSQL database it creates and drops), starts `manage.py qcluster` (and, for the webhook
path, gunicorn on a free loopback port), submits all mails, and polls the database
until every InboundMessage is processed, ignored or failed. "End to end" is from the first
submission to the last `processed_at`. Everything it started is stopped, and the databases it
created are dropped, also on Ctrl-C. See bench/README.md.
"""

from __future__ import annotations

import os
import sys

# Python puts this script's folder first on sys.path, where other benchmarks' modules (a
# bench/queue.py, say) would shadow the standard library: take it off before importing anything.
_HERE = os.path.dirname(os.path.realpath(__file__))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _HERE]

import argparse
import base64
import contextlib
import json
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def _load_mailgen() -> Any:
    """bench/_mailgen.py by its path (the bench folder is deliberately not on sys.path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_mailgen", Path(__file__).resolve().parent / "_mailgen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["_mailgen"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


_mailgen = _load_mailgen()

PG_HOST = "/var/run/postgresql"
# Helpers benchmarking side by side on one PostgreSQL need databases of their own.
PG_DB = os.environ.get("ABUSEDESK_BENCH_DB", "abusedesk_bench")
PG_TEMPLATE = f"{PG_DB}_template"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
FINAL_STATES = ("processed", "ignored", "failed")


def _reexec_in_venv() -> None:
    """The driver needs psycopg (and, for --profile, Django): run under the project's venv."""
    try:
        import django  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError:
        if VENV_PYTHON.exists() and Path(sys.executable).resolve() != VENV_PYTHON.resolve():
            os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])
        raise SystemExit("bench/ingest.py needs the project's venv (make venv), with Django and psycopg") from None


# --- Processes ----------------------------------------------------------------------------------


def _read_status_kb(pid: int) -> tuple[int, int]:
    """(VmHWM, VmRSS) of a process in KiB, or (0, 0) if it is gone."""
    hwm = rss = 0
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return hwm, rss


def _read_pss_kb(pid: int) -> int:
    """Proportional set size: pages shared by forked processes counted once across them."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _cpu_seconds(pid: int) -> float:
    """utime+stime of a process plus that of its reaped children (so recycled workers still count)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # fields[0] is field 3 (state); utime, stime, cutime, cstime are fields 14-17.
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def _cpu_own(pid: int) -> float:
    """utime+stime of the process itself."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cluster_helpers(root: int) -> list[int]:
    """The qcluster processes that are not workers: main, sentinel, and the monitor and pusher,
    which the sentinel starts right after the first workers (so they have the highest pids then)."""
    sentinels = _children(root)
    if len(sentinels) != 1:
        return [root]
    return [root, sentinels[0], *sorted(_children(sentinels[0]))[-2:]]


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                found += [int(x) for x in handle.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        if os.path.exists(f"/proc/{current}"):
            tree.append(current)
            todo += _children(current)
    return tree


def tree_cpu(pid: int) -> float:
    return sum(_cpu_seconds(p) for p in process_tree(pid))


def cpu_of_command(names: Sequence[str]) -> float:
    """CPU of every process with one of these command names (PostgreSQL backends, Redis)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as handle:
                comm = handle.read().strip()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if comm in names:
            total += _cpu_seconds(int(entry))
    return total


@dataclass
class Started:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    # qcluster hangs on a group-wide SIGTERM (django-q2 #346): signal its main pid only first.
    main_pid_only: bool = False
    peak_sum_hwm_kb: int = 0
    peak_one_hwm_kb: int = 0
    peak_sum_rss_kb: int = 0
    peak_sum_pss_kb: int = 0
    processes: int = 0

    def sample(self) -> None:
        pids = process_tree(self.popen.pid) if self.popen.poll() is None else []
        stats = [_read_status_kb(p) for p in pids]
        if stats:
            self.processes = len(pids)
            self.peak_sum_hwm_kb = max(self.peak_sum_hwm_kb, sum(h for h, _ in stats))
            self.peak_one_hwm_kb = max(self.peak_one_hwm_kb, max(h for h, _ in stats))
            self.peak_sum_rss_kb = max(self.peak_sum_rss_kb, sum(r for _, r in stats))
            if len(pids) > 1:
                self.peak_sum_pss_kb = max(self.peak_sum_pss_kb, sum(_read_pss_kb(p) for p in pids))


class Processes:
    """Everything the benchmark started, so that it can all be stopped from one place."""

    def __init__(self) -> None:
        self.running: list[Started] = []
        self.lock = threading.Lock()

    def start(
        self, name: str, argv: list[str], env: dict[str, str], log: Path, *, main_pid_only: bool = False
    ) -> Started:
        handle = open(log, "ab")  # noqa: SIM115 (closed with the process)
        popen = subprocess.Popen(
            argv,
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        started = Started(name, popen, log, main_pid_only=main_pid_only)
        with self.lock:
            self.running.append(started)
        return started

    def sample(self) -> None:
        with self.lock:
            for started in list(self.running):
                started.sample()

    def stop(self, started: Started, grace: float = 5.0) -> None:
        popen = started.popen
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if started.main_pid_only:
                    popen.send_signal(signal.SIGTERM)
                else:
                    os.killpg(popen.pid, signal.SIGTERM)
            try:
                popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # The process group is the session the benchmark created for this process: nothing else.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(5)
        with self.lock:
            if started in self.running:
                self.running.remove(started)

    def stop_all(self) -> None:
        for started in reversed(list(self.running)):
            self.stop(started, grace=2.0)


PROCS = Processes()
# Set when a run ends or the benchmark is interrupted: submitters stop instead of retrying.
STOP = threading.Event()


class Sampler(threading.Thread):
    """Reads VmHWM/VmRSS of every started process tree a few times a second."""

    def __init__(self, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.interval):
            PROCS.sample()


def run_measured(argv: list[str], env: dict[str, str], log: Path) -> tuple[int, float, int, float]:
    """Run a command to completion: (exit code, wall seconds, peak RSS KiB, CPU seconds), from wait4."""
    started = PROCS.start(Path(argv[2]).name if len(argv) > 2 else argv[0], argv, env, log)
    begin = time.monotonic()
    _, status, usage = os.wait4(started.popen.pid, 0)
    wall = time.monotonic() - begin
    started.popen.returncode = os.waitstatus_to_exitcode(status)
    with PROCS.lock:
        PROCS.running.remove(started)
    return started.popen.returncode, wall, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def server_argv(kind: str, port: int, workers: int) -> list[str]:
    if kind == "gunicorn":
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "abusedesk.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--timeout",
            "120",
            "--graceful-timeout",
            "3",
            "--log-level",
            "warning",
        ]
    return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"]


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    with open("/proc/stat") as handle:
        ticks = [int(x) for x in handle.readline().split()[1:]]
    total = sum(ticks[:8])
    return total - ticks[3] - ticks[4], total


def wait_for_quiet(limit: float, threshold: float = 25.0) -> float:
    """Wait (at most `limit` seconds) for a second in which the machine is under `threshold`% busy."""
    deadline = time.monotonic() + limit
    busy_pct = 100.0
    while True:
        busy0, total0 = machine_ticks()
        time.sleep(1.0)
        busy1, total1 = machine_ticks()
        busy_pct = 100 * (busy1 - busy0) / max(1, total1 - total0)
        if busy_pct < threshold or time.monotonic() >= deadline:
            return busy_pct


def free_port() -> int:
    """A free loopback port: from ABUSEDESK_BENCH_PORTS ("first-last") when set, else any."""
    first, _, last = os.environ.get("ABUSEDESK_BENCH_PORTS", "0-0").partition("-")
    for port in range(int(first), int(last or first) + 1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise RuntimeError(f"no free port in ABUSEDESK_BENCH_PORTS={first}-{last}")


def wait_for_port(port: int, started: Started, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if started.popen.poll() is not None:
            raise RuntimeError(f"{started.name} exited early; see {started.log}")
        with socket.socket() as probe:
            probe.settimeout(0.2)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{started.name} did not listen on port {port} within {timeout:g} s; see {started.log}")


def wait_for_cluster(started: Started, workers: int, timeout: float = 30.0) -> None:
    """qcluster is ready when its tree holds main, sentinel, pusher, monitor and the workers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if started.popen.poll() is not None:
            raise RuntimeError(f"qcluster exited early; see {started.log}")
        if len(process_tree(started.popen.pid)) >= workers + 4:
            time.sleep(0.3)  # let the workers finish importing Django
            return
        time.sleep(0.05)
    raise RuntimeError(f"qcluster did not start {workers} workers within {timeout:g} s; see {started.log}")


# --- Databases ----------------------------------------------------------------------------------


def pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"dbname=postgres host={PG_HOST}", autocommit=True) as conn:
        conn.execute(sql)


def pg_url(name: str) -> str:
    return f"postgres:///{name}?host={PG_HOST}"


class Database:
    """A fresh database per run, copied from a migrated template (migrations run once per kind)."""

    def __init__(self, kind: str, workdir: Path, env: dict[str, str]) -> None:
        self.kind = kind
        self.workdir = workdir
        self.env = env
        self.template_ready = False
        self.migrate_seconds = 0.0
        self.current: str | None = None
        self.has_deliveries = False

    def _template(self) -> None:
        if self.template_ready:
            return
        env = dict(self.env)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.kind == "postgres":
            pg_admin(f'DROP DATABASE IF EXISTS "{PG_TEMPLATE}" WITH (FORCE)')
            pg_admin(f'CREATE DATABASE "{PG_TEMPLATE}"')
            env["DATABASE_URL"] = pg_url(PG_TEMPLATE)
        else:
            (self.workdir / "template").mkdir(parents=True, exist_ok=True)
            env["ABUSEDESK_VAR_DIR"] = str(self.workdir / "template")
            env["DATABASE_URL"] = f"sqlite:///{self.workdir / 'template' / 'abusedesk.sqlite3'}"
        begin = time.monotonic()
        code, _, _, _ = run_measured(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], env, self.workdir / "migrate.log"
        )
        self.migrate_seconds = time.monotonic() - begin
        if code != 0:
            raise RuntimeError(f"migrate failed on {self.kind}; see {self.workdir / 'migrate.log'}")
        self.template_ready = True
        # Whether this checkout stores webhook requests before unpacking them (a version before
        # that, run in turns for comparison, has no such table).
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(f"dbname={PG_TEMPLATE} host={PG_HOST}") as conn:
                found = conn.execute("SELECT to_regclass('reports_webhookdelivery')").fetchone()
            self.has_deliveries = bool(found and found[0])
        else:
            with contextlib.closing(sqlite3.connect(self.workdir / "template" / "abusedesk.sqlite3")) as conn:
                found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'reports_webhookdelivery'").fetchone()
            self.has_deliveries = found is not None

    def fresh(self, var_dir: Path) -> str:
        """Create the run's database and return its DATABASE_URL."""
        self._template()
        if self.kind == "postgres":
            pg_admin(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
            pg_admin(f'CREATE DATABASE "{PG_DB}" TEMPLATE "{PG_TEMPLATE}"')
            self.current = PG_DB
            return pg_url(PG_DB)
        path = var_dir / "abusedesk.sqlite3"
        shutil.copyfile(self.workdir / "template" / "abusedesk.sqlite3", path)
        self.current = str(path)
        return f"sqlite:///{path}"

    def drop(self) -> None:
        if self.kind == "postgres" and self.current:
            with contextlib.suppress(Exception):
                pg_admin(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        self.current = None

    def drop_all(self) -> None:
        self.drop()
        if self.kind == "postgres" and self.template_ready:
            with contextlib.suppress(Exception):
                pg_admin(f'DROP DATABASE IF EXISTS "{PG_TEMPLATE}" WITH (FORCE)')
        self.template_ready = False

    @contextlib.contextmanager
    def connect(self) -> Iterator[Callable[[str], list[tuple[Any, ...]]]]:
        """A small read-only query function on the run's database."""
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(f"dbname={PG_DB} host={PG_HOST}", autocommit=True) as conn:
                yield lambda sql: conn.execute(sql).fetchall()
        else:
            conn = sqlite3.connect(str(self.current), timeout=30)
            try:
                yield lambda sql: conn.execute(sql).fetchall()
            finally:
                conn.close()


def _as_epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


# What-if settings: measure a change before anyone makes it. Each is a line appended to a
# settings module that star-imports the project's settings (see Bench.what_if_settings).
WHAT_IF = {
    "no-results": (
        "Q_CLUSTER save_limit=-1: the monitor stores failed tasks only, not every successful result",
        'Q_CLUSTER["save_limit"] = -1',
    ),
    "preload-langid": (
        "load the language model when settings load (the q-cluster has done so itself since the drain"
        " task; this now only matters for other processes)",
        "from reports.language import _identifier\n_identifier()",
    ),
    "recycle-5000": ("Q_CLUSTER recycle=5000 instead of 500 tasks per worker", 'Q_CLUSTER["recycle"] = 5000'),
    "bulk-10": ("Q_CLUSTER bulk=10: the pusher takes up to 10 tasks per broker round trip", 'Q_CLUSTER["bulk"] = 10'),
}


# --- Submission ---------------------------------------------------------------------------------


def webhook_payload(esp: str, mail: _mailgen.GeneratedMail) -> bytes:
    """The body a provider would POST to anymail's inbound webhook for this mail."""
    if esp == "postmark":
        event = {
            "RawEmail": mail.raw.decode("utf-8"),
            "MessageID": str(uuid.UUID(int=mail.index + 1)),
            "OriginalRecipient": _mailgen.ABUSE_ADDRESS,
            "Headers": [{"Name": "Return-Path", "Value": f"<{mail.sender}>"}],
            "FromFull": {"Email": mail.sender, "Name": ""},
            "ToFull": [{"Email": _mailgen.ABUSE_ADDRESS, "Name": ""}],
        }
        return json.dumps(event).encode()
    relay = {
        "protocol": "smtp",
        "rcpt_to": _mailgen.ABUSE_ADDRESS,
        "msg_from": mail.sender,
        "webhook_id": "bench",
        "content": {"email_rfc822_is_base64": True, "email_rfc822": base64.b64encode(mail.raw).decode()},
    }
    return json.dumps([{"msys": {"relay_message": relay}}]).encode()


@dataclass
class Submission:
    ok: int = 0
    http_errors: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    request_seconds: list[float] = field(default_factory=list)
    done_at: float = 0.0
    cli_rss_kb: int = 0
    cli_cpu: float = 0.0
    error: str = ""


def post_once(url: str, head: bytes, body: bytes, timeout: float = 120) -> int:
    """POST over a fresh connection and return the status code: HTTP/1.1 by hand on a socket, as
    load generators do (urllib spent about 1 ms of CPU a request on its handlers and on parsing
    the response's headers, on the same two cores as the desk)."""
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout) as sock:
        sock.sendall(head + body)
        response = b""
        while b"\r\n" not in response:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection without an answer")
            response += chunk
        while sock.recv(65536):
            pass  # the rest of the answer, until the server closes (Connection: close)
    return int(response.split(b" ", 2)[1])


def post_all(url: str, secret: str, payloads: list[bytes], threads: int, result: Submission) -> None:
    auth = "Basic " + base64.b64encode(secret.encode()).decode()
    parts = urllib.parse.urlsplit(url)
    lock = threading.Lock()

    def post(body: bytes) -> None:
        head = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: {auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        for attempt in range(4):
            if STOP.is_set():
                return
            begin = time.monotonic()
            try:
                status: int | str = post_once(url, head, body)
            except (OSError, ValueError, IndexError) as exc:
                status = type(exc).__name__
            elapsed = time.monotonic() - begin
            with lock:
                result.request_seconds.append(elapsed)
                if status == 200:
                    result.ok += 1
                    return
                result.http_errors[str(status)] += 1
                if attempt < 3:
                    result.retries += 1
            # A provider retries 5xx and connection errors; do the same, a little later.
            time.sleep(0.2 * (attempt + 1))

    pool = ThreadPoolExecutor(threads)
    try:
        list(pool.map(post, payloads))
    finally:
        pool.shutdown(wait=not STOP.is_set(), cancel_futures=True)
    result.done_at = time.time()


def warm_up(url: str, threads: int) -> None:
    """GET the webhook URL (405) from several connections at once, so that every server worker
    has loaded the URLconf, with anymail's webhook modules and the SDKs they import, before the
    clock starts: a provider posts to a server that has been running."""
    parts = urllib.parse.urlsplit(url)
    head = f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: post_once(url, head, b""), range(threads * 4)))


def cli_ingest(paths: list[Path], batch: int, env: dict[str, str], log: Path, result: Submission) -> None:
    batch = batch or len(paths)
    for start in range(0, len(paths), batch):
        if STOP.is_set():
            break
        argv = [sys.executable, "manage.py", "ingest_mail", "--source", "cli", *map(str, paths[start : start + batch])]
        code, _, rss_kb, cpu = run_measured(argv, env, log)
        result.cli_rss_kb = max(result.cli_rss_kb, rss_kb)
        result.cli_cpu += cpu
        if code != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-2:]
            result.error = f"ingest_mail exited {code}: {' / '.join(tail)}"
        else:
            result.ok += min(batch, len(paths) - start)
    result.done_at = time.time()


# --- One run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    db: str
    path: str
    broker: str
    workers: int
    variant: str = ""  # "+"-joined WHAT_IF tweaks, "" for the project's settings as they are

    def label(self) -> str:
        return f"{self.db}/{self.path}/{self.broker}/w{self.workers}" + (f"/{self.variant}" if self.variant else "")


@dataclass
class RunResult:
    config: Config
    n: int
    states: dict[str, int]
    seconds: float
    rate: float
    intake_rate: float
    p50: float
    p95: float
    p99: float
    failed: int
    server_mb: float
    server_one_mb: float
    cluster_mb: float
    cluster_one_mb: float
    cluster_pss_mb: float
    cli_mb: float
    cpu: dict[str, float]
    checks: dict[str, Any]
    complete: bool
    request_p50: float = 0.0
    request_p99: float = 0.0
    http_errors: str = ""


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix="abusedesk-bench-"))
        self.secret = "bench:" + uuid.uuid4().hex
        self.base_env = {
            key: value
            for key, value in os.environ.items()
            if key
            not in {"DATABASE_URL", "REDIS_URL", "ABUSEDESK_VAR_DIR", "ABUSEDESK_MEDIA_ROOT", "DJANGO_SETTINGS_MODULE"}
        }
        self.base_env.update(
            {
                "DJANGO_SETTINGS_MODULE": "abusedesk.settings",
                "DEBUG": "true" if args.debug else "false",
                "SECRET_KEY": "bench-" + uuid.uuid4().hex,
                "ANYMAIL_WEBHOOK_SECRET": self.secret,
                "ABUSEDESK_TASKS_SYNC": "false",
                "LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        self.databases: dict[str, Database] = {}
        self.pg_cpu_base: dict[int, float] = {}
        self.pg_cpu_last: dict[int, float] = {}
        self.pg_waits: Counter[str] = Counter()
        self.helpers: list[int] = []
        self.mails: list[_mailgen.GeneratedMail] = []
        self.payloads: list[bytes] = []

    def database(self, kind: str) -> Database:
        if kind not in self.databases:
            self.databases[kind] = Database(kind, self.workdir / f"db-{kind}", self.base_env)
        return self.databases[kind]

    def cleanup(self) -> None:
        PROCS.stop_all()
        for database in self.databases.values():
            database.drop_all()
        self._purge_redis()
        if self.args.keep:
            print(f"kept {self.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _purge_redis(self) -> None:
        if "redis" not in self.args.broker:
            return
        with contextlib.suppress(Exception):
            import redis

            client = redis.from_url(self.args.redis_url)
            for key in client.scan_iter("django_q:abusedesk*"):
                client.delete(key)

    def env_for(self, config: Config, var_dir: Path, database_url: str) -> dict[str, str]:
        env = dict(self.base_env)
        env.update(
            {
                "ABUSEDESK_VAR_DIR": str(var_dir),
                "DATABASE_URL": database_url,
                "ABUSEDESK_Q_WORKERS": str(config.workers),
            }
        )
        if config.broker == "redis":
            env["REDIS_URL"] = self.args.redis_url
        if config.variant:
            env["DJANGO_SETTINGS_MODULE"] = self.what_if_settings(config.variant)
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(self.workdir / "settings"), env.get("PYTHONPATH", "")])
            )
        return env

    def what_if_settings(self, variant: str) -> str:
        """A settings module: the project's settings plus the variant's tweaks (an experiment only)."""
        name = "bench_whatif_" + variant.replace("+", "_").replace("-", "_")
        folder = self.workdir / "settings"
        folder.mkdir(exist_ok=True)
        body = ["from abusedesk.settings import *  # noqa: F403", "from abusedesk.settings import DATABASES, Q_CLUSTER"]
        body += [WHAT_IF[tweak][1] for tweak in variant.split("+")]
        (folder / f"{name}.py").write_text("\n".join(body) + "\n")
        return name

    def server_env(self, env: dict[str, str]) -> dict[str, str]:
        env = dict(env)
        if self.args.server == "runserver":
            # runserver handles each request in a new thread, so persistent connections (the
            # settings' DB_CONN_MAX_AGE=60) pile up until PostgreSQL refuses clients; Django's docs
            # say not to use them with the development server. --server-env overrides this.
            env["DB_CONN_MAX_AGE"] = "0"
        for item in self.args.server_env:
            key, _, value = item.partition("=")
            env[key] = value
        return env

    def run(self, config: Config, repeat: int) -> RunResult:
        args = self.args
        STOP.clear()
        var_dir = self.workdir / f"run-{config.label().replace('/', '-')}-{repeat}"
        var_dir.mkdir(parents=True)
        database = self.database(config.db)
        env = self.env_for(config, var_dir, database.fresh(var_dir))
        self._purge_redis()
        n = len(self.mails)
        eml_paths: list[Path] = []
        if config.path == "cli":
            (var_dir / "mails").mkdir()
            for mail in self.mails:
                path = var_dir / "mails" / f"{mail.index:06d}.eml"
                path.write_bytes(mail.raw)
                eml_paths.append(path)
        try:
            cluster = PROCS.start(
                "qcluster", [sys.executable, "manage.py", "qcluster"], env, var_dir / "qcluster.log", main_pid_only=True
            )
            server = None
            if config.path == "webhook":
                port = free_port()
                server = PROCS.start(
                    args.server,
                    server_argv(args.server, port, args.server_workers),
                    self.server_env(env),
                    var_dir / "server.log",
                )
                wait_for_port(port, server)
                if not args.cold:
                    warm_up(f"http://127.0.0.1:{port}/webhooks/anymail/{args.esp}/inbound/", args.threads)
            wait_for_cluster(cluster, config.workers)
            self.helpers = cluster_helpers(cluster.popen.pid)
            if args.settle:
                self.idle_before = wait_for_quiet(args.settle)
            PROCS.sample()

            self.pg_cpu_base, self.pg_cpu_last = {}, {}
            if config.db == "postgres":
                with database.connect() as query:
                    self._pg_backends(query)
                self.pg_cpu_base = dict(self.pg_cpu_last)
            cpu_before = self._cpu_snapshot(cluster, server)
            submission = Submission()
            t0 = time.time()
            if config.path == "cli":
                submitter = threading.Thread(
                    target=cli_ingest,
                    args=(eml_paths, args.cli_batch, env, var_dir / "cli.log", submission),
                    daemon=True,
                )
            else:
                url = f"http://127.0.0.1:{port}/webhooks/anymail/{args.esp}/inbound/"
                submitter = threading.Thread(
                    target=post_all, args=(url, self.secret, self.payloads, args.threads, submission), daemon=True
                )
            submitter.start()
            complete, states = self._wait_until_done(database, submitter, n, t0)
            if config.db == "postgres":
                with database.connect() as query:
                    self._pg_backends(query)
            cpu_after = self._cpu_snapshot(cluster, server)
            submitter.join()
            PROCS.sample()
            result = self._collect(config, database, n, t0, submission, complete, states, cpu_before, cpu_after)
            result.server_mb = server.peak_sum_hwm_kb / 1024 if server else 0.0
            result.server_one_mb = server.peak_one_hwm_kb / 1024 if server else 0.0
            result.cluster_mb = cluster.peak_sum_hwm_kb / 1024
            result.cluster_one_mb = cluster.peak_one_hwm_kb / 1024
            result.cluster_pss_mb = cluster.peak_sum_pss_kb / 1024
            if server:
                PROCS.stop(server)
            PROCS.stop(cluster)
            return result
        finally:
            STOP.set()
            PROCS.stop_all()
            database.drop()
            if not args.keep:
                shutil.rmtree(var_dir, ignore_errors=True)

    def _cpu_snapshot(self, cluster: Started, server: Started | None) -> dict[str, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        with open("/proc/stat") as handle:
            ticks = [int(x) for x in handle.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal ...
        machine = {
            "machine_busy": (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLK_TCK,
            "machine_steal": ticks[7] / CLK_TCK,
            "machine_total": sum(ticks[:8]) / CLK_TCK,
        }
        return machine | {
            "qcluster": tree_cpu(cluster.popen.pid),
            # Worker CPU = the tree minus these (recycled workers land in the sentinel's cutime).
            "q_other": sum(_cpu_own(p) for p in self.helpers),
            "server": tree_cpu(server.popen.pid) if server else 0.0,
            # Redis may serve others too; it is only counted for Redis-broker runs (see _collect).
            "redis": cpu_of_command(["redis-server"]),
            "bench": usage.ru_utime + usage.ru_stime,
        }

    def _pg_backends(self, query: Callable[[str], list[tuple[Any, ...]]]) -> None:
        """Track the CPU of the PostgreSQL backends serving the bench database (not other databases)."""
        rows = query(f"SELECT pid FROM pg_stat_activity WHERE datname = '{PG_DB}' AND pid <> pg_backend_pid()")
        for (pid,) in rows:
            seconds = _cpu_seconds(pid)
            self.pg_cpu_last[pid] = max(seconds, self.pg_cpu_last.get(pid, 0.0))

    def _wait_until_done(
        self, database: Database, submitter: threading.Thread, n: int, t0: float
    ) -> tuple[bool, dict[str, int]]:
        deadline = t0 + self.args.timeout
        states: dict[str, int] = {}
        self.pg_waits = Counter()
        with database.connect() as query:
            while time.time() < deadline:
                time.sleep(self.args.poll)
                if database.kind == "postgres":
                    self._pg_backends(query)
                    # What the desk's backends are doing right now: on CPU, waiting for a lock or
                    # I/O, or idle waiting for the Python side (inside a transaction or not).
                    for what, count in query(
                        "SELECT state || ' ' || COALESCE(wait_event_type || ':' || wait_event, 'on CPU'), COUNT(*) "
                        f"FROM pg_stat_activity WHERE datname = '{PG_DB}' AND pid <> pg_backend_pid() GROUP BY 1"
                    ):
                        self.pg_waits[what.replace("Client:ClientRead", "(waiting for client)")] += count
                states = dict(query("SELECT state, COUNT(*) FROM reports_inboundmessage GROUP BY state"))
                settled = sum(states.get(s, 0) for s in FINAL_STATES)
                # Webhook requests stored as received and not unpacked yet (from 0007 on).
                unpacking = (
                    database.has_deliveries
                    and query("SELECT COUNT(*) FROM reports_webhookdelivery WHERE state = 'pending'")[0][0]
                )
                if settled >= n or (
                    not submitter.is_alive() and states.get("pending", 0) == 0 and not unpacking and settled
                ):
                    return True, states
        return False, states

    def _collect(
        self,
        config: Config,
        database: Database,
        n: int,
        t0: float,
        submission: Submission,
        complete: bool,
        states: dict[str, int],
        cpu_before: dict[str, float],
        cpu_after: dict[str, float],
    ) -> RunResult:
        with database.connect() as query:
            rows = query("SELECT received_at, processed_at FROM reports_inboundmessage WHERE processed_at IS NOT NULL")
            latencies = [(_as_epoch(p) - _as_epoch(r)) * 1000 for r, p in rows]
            last = max((_as_epoch(p) for _, p in rows), default=time.time())
            failed_errors = [
                row[0] for row in query("SELECT error FROM reports_inboundmessage WHERE state = 'failed' LIMIT 3")
            ]
            kinds = dict(query("SELECT kind, COUNT(*) FROM reports_report GROUP BY kind"))
            storm_cases = query(
                "SELECT COUNT(DISTINCT ce.case_id) FROM reports_case_entities ce JOIN reports_entity e ON e.id = ce.entity_id "
                "WHERE e.url = 'https://t.me/nightfall_media_official'"
            )[0][0]
            checks = {
                "reports": sum(kinds.values()),
                "kinds": kinds,
                "cases": query("SELECT COUNT(*) FROM reports_case")[0][0],
                "entities": query("SELECT COUNT(*) FROM reports_entity")[0][0],
                "attachments": query("SELECT COUNT(*) FROM reports_attachment")[0][0],
                "storm_cases": storm_cases,
                "failed_tasks": query("SELECT COUNT(*) FROM django_q_task WHERE NOT success")[0][0],
                "failed_deliveries": query("SELECT COUNT(*) FROM reports_webhookdelivery WHERE state = 'failed'")[0][0]
                if database.has_deliveries
                else 0,
                "errors": failed_errors,
            }
        seconds = last - t0
        cpu = {key: cpu_after[key] - cpu_before[key] for key in cpu_before}
        machine = {key: cpu.pop(key) for key in ("machine_busy", "machine_steal", "machine_total")}
        checks["machine_busy_pct"] = (
            100 * machine["machine_busy"] / machine["machine_total"] if machine["machine_total"] else 0.0
        )
        checks["machine_steal_pct"] = (
            100 * machine["machine_steal"] / machine["machine_total"] if machine["machine_total"] else 0.0
        )
        checks["pg_waits"] = Counter(self.pg_waits)
        cpu["cli"] = submission.cli_cpu
        # Backends that connect and leave between two polls are missed (persistent connections are not).
        cpu["postgres"] = sum(last - self.pg_cpu_base.get(pid, 0.0) for pid, last in self.pg_cpu_last.items())
        if config.broker != "redis":
            cpu["redis"] = 0.0
        if submission.error:
            checks["submit_error"] = submission.error
        result = RunResult(
            config=config,
            n=n,
            states=states,
            seconds=seconds,
            rate=sum(states.get(s, 0) for s in FINAL_STATES) / seconds if seconds > 0 else 0.0,
            # What the path accepted, from the database (an ingest_mail that exits non-zero may have stored all).
            intake_rate=sum(states.values()) / (submission.done_at - t0) if submission.done_at > t0 else 0.0,
            p50=percentile(latencies, 50),
            p95=percentile(latencies, 95),
            p99=percentile(latencies, 99),
            failed=states.get("failed", 0),
            server_mb=0.0,
            server_one_mb=0.0,
            cluster_mb=0.0,
            cluster_one_mb=0.0,
            cluster_pss_mb=0.0,
            cli_mb=submission.cli_rss_kb / 1024,
            cpu=cpu,
            checks=checks,
            complete=complete,
        )
        if submission.request_seconds:
            result.request_p50 = percentile(submission.request_seconds, 50) * 1000
            result.request_p99 = percentile(submission.request_seconds, 99) * 1000
        result.http_errors = ", ".join(f"{k}x{v}" for k, v in sorted(submission.http_errors.items()))
        return result

    # --- The 25 MB message ---------------------------------------------------------------------

    def big(self, db: str) -> list[dict[str, Any]]:
        args = self.args
        STOP.clear()
        raw = _mailgen.big_mail(int(args.big_mb * 1024 * 1024), seed=args.seed)
        rows: list[dict[str, Any]] = []
        database = self.database(db)

        def row(how: str, process: str, mail: bytes, peak_kb: float, seconds: float, state: str) -> None:
            rows.append(
                {
                    "db": db,
                    "how": how,
                    "process": process,
                    "raw_mb": len(mail) / 2**20,
                    "peak_mb": peak_kb / 1024,
                    "seconds": seconds,
                    "state": state,
                }
            )

        # (1) the CLI with --sync: store and process in one process.
        var_dir = self.workdir / f"big-{db}-sync"
        var_dir.mkdir(parents=True)
        try:
            env = self.env_for(Config(db, "cli", "orm", 1), var_dir, database.fresh(var_dir))
            # The same command on an ordinary 2 KiB report first: the peak that is not the big mail's.
            small = _mailgen.generate(1, seed=args.seed)[0].raw
            (var_dir / "small.eml").write_bytes(small)
            code, wall, rss_kb, _ = run_measured(
                [sys.executable, "manage.py", "ingest_mail", "--sync", str(var_dir / "small.eml")],
                env,
                var_dir / "cli.log",
            )
            row(
                "ingest_mail --sync (a 2 KiB report)",
                "cli",
                small,
                rss_kb,
                wall,
                "baseline" if code == 0 else f"exit {code}",
            )
            (var_dir / "big.eml").write_bytes(raw)
            code, wall, rss_kb, _ = run_measured(
                [sys.executable, "manage.py", "ingest_mail", "--sync", str(var_dir / "big.eml")],
                env,
                var_dir / "cli.log",
            )
            state = self._big_state(database)
            row("ingest_mail --sync (the big mail)", "cli", raw, rss_kb, wall, state if code == 0 else f"exit {code}")
        finally:
            PROCS.stop_all()
            database.drop()
            if not args.keep:
                shutil.rmtree(var_dir, ignore_errors=True)
        # (2) the webhook into a running server, processed by a q-cluster worker.
        var_dir = self.workdir / f"big-{db}-webhook"
        var_dir.mkdir(parents=True)
        try:
            config = Config(db, "webhook", "orm", 1)
            env = self.env_for(config, var_dir, database.fresh(var_dir))
            port = free_port()
            server = PROCS.start(
                args.server,
                server_argv(args.server, port, args.server_workers),
                self.server_env(env),
                var_dir / "server.log",
            )
            cluster = PROCS.start(
                "qcluster", [sys.executable, "manage.py", "qcluster"], env, var_dir / "qcluster.log", main_pid_only=True
            )
            wait_for_port(port, server)
            wait_for_cluster(cluster, 1)
            mail = _mailgen.GeneratedMail(0, raw, "evidence.sender@example.org", "", "en", "big", False, 1)
            submission = Submission()
            t0 = time.time()
            post_all(
                f"http://127.0.0.1:{port}/webhooks/anymail/{args.esp}/inbound/",
                self.secret,
                [webhook_payload(args.esp, mail)],
                1,
                submission,
            )
            done, _ = self._wait_until_done(database, threading.Thread(), 1, t0)
            seconds = time.time() - t0
            PROCS.sample()
            state = self._big_state(database) if submission.ok else f"HTTP {dict(submission.http_errors)}"
            row(
                f"webhook ({args.esp}) + q-cluster",
                f"{args.server} (all processes)",
                raw,
                server.peak_sum_hwm_kb,
                seconds,
                state,
            )
            row(
                f"webhook ({args.esp}) + q-cluster",
                f"{args.server} (largest)",
                raw,
                server.peak_one_hwm_kb,
                seconds,
                state,
            )
            row(
                f"webhook ({args.esp}) + q-cluster",
                "qcluster (largest)",
                raw,
                cluster.peak_one_hwm_kb,
                seconds,
                state if done else "timeout",
            )
        finally:
            PROCS.stop_all()
            database.drop()
            if not args.keep:
                shutil.rmtree(var_dir, ignore_errors=True)
        return rows

    def _big_state(self, database: Database) -> str:
        with database.connect() as query:
            rows = query("SELECT state, error FROM reports_inboundmessage ORDER BY raw_size DESC LIMIT 1")
            attachments = query("SELECT COUNT(*), COALESCE(MAX(size), 0) FROM reports_attachment")[0]
        if not rows:
            return "not stored"
        state, error = rows[0]
        if state == "failed":
            return f"failed: {error[:60]}"
        return f"{state}, attachment {attachments[1] / 2**20:.1f} MB" if attachments[0] else state


# --- Output -------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            if value != value:
                return "-"
            return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
        return str(value)

    text_rows = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text_rows)) if text_rows else len(h) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], int | float) for row in rows) if rows else False for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    out = [title] if title else []
    out += [line(list(headers)), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in text_rows]
    return "\n".join(out)


def median(values: Sequence[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def summarize(results: list[RunResult]) -> None:
    groups: dict[Config, list[RunResult]] = {}
    for result in results:
        groups.setdefault(result.config, []).append(result)
    rows, cpu_rows, check_rows, wait_rows = [], [], [], []
    for config, runs in groups.items():
        ok = all(r.complete for r in runs)
        cpu_keys = ["qcluster", "server", "cli", "postgres", "redis", "bench"]
        per_msg = [median([r.cpu.get(k, 0.0) * 1000 / max(r.n, 1) for r in runs]) for k in cpu_keys]
        desk_ms = sum(per_msg[:5])  # everything but the load generator
        q_other = median([r.cpu.get("q_other", 0.0) * 1000 / max(r.n, 1) for r in runs])
        ceiling = (os.cpu_count() or 1) * 1000 / desk_ms if desk_ms else float("nan")
        rows.append(
            [
                config.db,
                config.path,
                config.broker,
                config.workers,
                config.variant or "-",
                len(runs),
                runs[0].n,
                median([r.rate for r in runs]),
                ceiling,
                median([r.intake_rate for r in runs]),
                median([r.seconds for r in runs]),
                median([r.p50 for r in runs]),
                median([r.p95 for r in runs]),
                median([r.p99 for r in runs]),
                max(r.failed for r in runs),
                "yes" if ok else "NO",
            ]
        )
        wall = median([r.seconds for r in runs])
        total_cpu = median([sum(v for k, v in r.cpu.items() if k != "q_other") for r in runs])
        cpu_rows.append(
            [
                config.db,
                config.path,
                config.broker,
                config.workers,
                config.variant or "-",
                per_msg[0],
                per_msg[0] - q_other,
                q_other,
                *per_msg[1:],
                sum(per_msg),
                total_cpu / wall * 100 if wall else float("nan"),
                median([r.checks["machine_busy_pct"] for r in runs]),
                median([r.checks["machine_steal_pct"] for r in runs]),
            ]
        )
        waits: Counter[str] = Counter()
        for r in runs:
            waits.update(r.checks["pg_waits"])
        if waits:
            total_waits = sum(waits.values())
            wait_rows.append(
                [
                    config.db,
                    config.path,
                    config.broker,
                    config.workers,
                    config.variant or "-",
                    ", ".join(f"{k} {100 * v / total_waits:.0f}%" for k, v in waits.most_common(7)),
                ]
            )
        check_rows.append(
            [
                config.db,
                config.path,
                config.broker,
                config.workers,
                config.variant or "-",
                median([r.server_mb for r in runs]) if config.path == "webhook" else float("nan"),
                median([r.server_one_mb for r in runs]) if config.path == "webhook" else float("nan"),
                median([r.cli_mb for r in runs]) if config.path == "cli" else float("nan"),
                median([r.cluster_mb for r in runs]),
                median([r.cluster_pss_mb for r in runs]),
                median([r.cluster_one_mb for r in runs]),
                median([r.request_p50 for r in runs]) if config.path == "webhook" else float("nan"),
                median([r.request_p99 for r in runs]) if config.path == "webhook" else float("nan"),
                runs[-1].checks["reports"],
                runs[-1].checks["cases"],
                runs[-1].checks["entities"],
                runs[-1].checks["storm_cases"],
                max(r.checks["failed_tasks"] for r in runs),
                "; ".join(sorted({r.http_errors for r in runs if r.http_errors})) or "-",
            ]
        )
    print()
    print(
        table(
            [
                "db",
                "path",
                "broker",
                "workers",
                "what-if",
                "runs",
                "mails",
                "msg/s",
                "cpu ceiling",
                "intake/s",
                "wall s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "failed",
                "complete",
            ],
            rows,
            "End to end (medians over runs): first submission -> last processed_at; latency = processed_at - received_at.\n"
            f"cpu ceiling = {os.cpu_count()} cores / the desk's CPU per message (all its processes and PostgreSQL/Redis, not the load\n"
            "generator): the rate this machine could reach with nothing else running and no idle time.",
        )
    )
    print()
    print(
        table(
            [
                "db",
                "path",
                "broker",
                "workers",
                "what-if",
                "server sum MB",
                "server largest MB",
                "cli MB",
                "qcluster sum HWM MB",
                "qcluster sum PSS MB",
                "qcluster largest MB",
                "req p50 ms",
                "req p99 ms",
                "reports",
                "cases",
                "entities",
                "cases w/ storm",
                "q failures",
                "http errors",
            ],
            check_rows,
            "Peak memory: VmHWM per process; q-cluster = peak over time of the sum over its process tree (HWM double-counts\n"
            "pages the forked processes share; PSS counts them once). Sanity checks from the last run.",
        )
    )
    print()
    print(
        table(
            [
                "db",
                "path",
                "broker",
                "workers",
                "what-if",
                "qcluster",
                "q workers",
                "q other",
                "server",
                "cli",
                "postgres",
                "redis",
                "bench",
                "total",
                "% of 1 core",
                "machine busy %",
                "steal %",
            ],
            cpu_rows,
            "CPU milliseconds per message, by process (medians), during the measured window. qcluster = q workers (the\n"
            "tasks, including recycled workers) + q other (pusher, monitor, sentinel, main). machine busy/steal: all of\n"
            "this VM's CPUs (100% = every core busy), so load from outside the benchmark shows there",
        )
    )
    if wait_rows:
        print()
        print(
            table(
                ["db", "path", "broker", "workers", "what-if", "share of sampled backend states"],
                wait_rows,
                "PostgreSQL: what the desk's connections were doing when sampled (pg_stat_activity, every poll)",
            )
        )


# --- In-process profile -------------------------------------------------------------------------


_SQL_LITERALS = [
    (r"'(?:[^']|'')*'", "?"),
    (r'"s\d+_x\d+"', "?"),
    (r"\b\d+(?:\.\d+)?\b", "?"),
    (r"%s", "?"),
    (r"\((?:\?, )+\?\)", "(?...)"),
    (r"(?:\((?:\?|\?\.\.\.)\)(?:, )?)+", "(...)"),
]


def sql_shape(sql: str) -> str:
    """A statement with its literals folded, so that statements of one kind count together."""
    import re

    for pattern, replacement in _SQL_LITERALS:
        sql = re.sub(pattern, replacement, sql)
    sql = re.sub(r'"[a-z_]+"\."([a-z_]+)"', r"\1", sql)  # "table"."column" -> column
    sql = re.sub(r"SELECT .*? FROM", "SELECT ... FROM", sql, count=1)
    return sql[:150]


def profile_child(count: int, seed: int, top: int) -> None:
    """Runs inside a subprocess whose environment points at a fresh database (see --profile).

    Pass 1 times each stage of processing (wall and CPU), pass 2 counts SQL statements, pass 3
    runs cProfile over processing, pass 4 sends webhook requests through Django's test client.
    Each pass has its own mails, so every message is processed once, from a fresh store.
    """
    import cProfile
    import io
    import pstats

    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    from anymail.inbound import AnymailInboundMessage
    from django.conf import settings
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django_q.models import OrmQ

    import reports.actions as actions
    from reports.intake import message_bytes
    from reports.language import detect_language
    from reports.models import InboundMessage

    mails = _mailgen.generate(count * 4, seed=seed + 1000)
    batches = [mails[i * count : (i + 1) * count] for i in range(4)]
    ms = 1000 / count

    rss_before = _read_status_kb(os.getpid())[1]
    begin = time.perf_counter()
    detect_language("warm up the language model before anything is timed")
    print(
        f"\nlanguage model load: {time.perf_counter() - begin:.2f} s, "
        f"+{(_read_status_kb(os.getpid())[1] - rss_before) / 1024:.0f} MB RSS "
        "(paid by every q-cluster worker at start and after each recycle, by default every 500 tasks)"
    )

    def store(batch: list[_mailgen.GeneratedMail]) -> tuple[list[int], float, float]:
        begin, cpu_begin = time.perf_counter(), time.thread_time()
        ids = [actions.do_store_inbound(mail.raw, source="cli", enqueue=False).message.pk for mail in batch]
        return ids, time.perf_counter() - begin, time.thread_time() - cpu_begin

    # Pass 1: wall and CPU time of each stage. On a busy machine the wall time also holds the wait
    # for a CPU; the CPU time does not.
    wall: Counter[str] = Counter()
    cpu: Counter[str] = Counter()

    def timed(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*a: Any, **k: Any) -> Any:
            begin, cpu_begin = time.perf_counter(), time.thread_time()
            try:
                return func(*a, **k)
            finally:
                wall[name] += time.perf_counter() - begin
                cpu[name] += time.thread_time() - cpu_begin

        return wrapper

    ids, wall["store"], cpu["store"] = store(batches[0])
    stages = ("read_blob", "parse_message", "_mentions_of", "detect_language", "thread_batch")
    originals = {name: getattr(actions, name) for name in stages}
    for name, func in originals.items():
        setattr(actions, name, timed(name, func))
    # Processing as the drain does it: batches of ABUSEDESK_PROCESS_BATCH in arrival order.
    size = settings.ABUSEDESK_PROCESS_BATCH

    def in_batches(ids: list[int]) -> list[list[int]]:
        return [ids[i : i + size] for i in range(0, len(ids), size)]

    begin, cpu_begin = time.perf_counter(), time.thread_time()
    for chunk in in_batches(ids):
        actions.do_process_batch(chunk)
    wall["process"], cpu["process"] = time.perf_counter() - begin, time.thread_time() - cpu_begin
    for name, func in originals.items():
        setattr(actions, name, func)
    states = Counter(InboundMessage.objects.filter(pk__in=ids).values_list("state", flat=True))

    # Pass 2: SQL statements per message: the store path with its ORM-broker enqueue, and processing.
    def captured(func: Callable[[], Any]) -> list[str]:
        reset_queries()
        with CaptureQueriesContext(connection) as ctx:
            func()
        return [q["sql"] for q in ctx.captured_queries]

    store_sql = [
        captured(lambda m=mail: actions.do_store_inbound(m.raw, source="cli", enqueue=True)) for mail in batches[1]
    ]
    pending = list(InboundMessage.objects.filter(state="pending").order_by("pk").values_list("pk", flat=True))
    process_batches = in_batches(pending)
    process_sql = [captured(lambda c=chunk: actions.do_process_batch(c)) for chunk in process_batches]
    OrmQ.objects.all().delete()

    # Pass 3: cProfile of processing.
    ids3, _, _ = store(batches[2])
    profiler = cProfile.Profile()
    profiler.enable()
    for chunk in in_batches(ids3):
        actions.do_process_batch(chunk)
    profiler.disable()

    # Pass 4: webhook requests in-process (middleware, the gate, the store), half timed and half
    # under cProfile; then the drain's unpack of what they stored (a checkout from before
    # InboundWebhook stores the mail in the request, through anymail's view and receiver); then
    # the re-serialisation steps alone.
    client = Client()
    auth = "Basic " + base64.b64encode(os.environ["ANYMAIL_WEBHOOK_SECRET"].encode()).decode()
    url = "/webhooks/anymail/postmark/inbound/"
    payloads = [webhook_payload("postmark", mail) for mail in batches[3]]
    half = len(payloads) // 2
    import reports.intake as intake
    import reports.tasks as tasks
    import reports.webhooks as webhooks

    as_received = hasattr(intake, "do_store_inbound_webhook")
    store_name = "do_store_inbound_webhook" if as_received else "do_store_inbound"
    patched = [(webhooks if as_received else intake, store_name), (intake, "message_bytes"), (tasks, "wake_processing")]
    saved = [getattr(module, name) for module, name in patched]
    for module, name in patched:
        setattr(module, name, timed(f"webhook:{name}", getattr(module, name)))
    begin, cpu_begin = time.perf_counter(), time.thread_time()
    statuses = Counter(
        client.post(url, body, content_type="application/json", HTTP_AUTHORIZATION=auth).status_code
        for body in payloads[:half]
    )
    wall["webhook"], cpu["webhook"] = (
        (time.perf_counter() - begin) * count / half,
        (time.thread_time() - cpu_begin) * count / half,
    )
    for (module, name), func in zip(patched, saved, strict=True):
        setattr(module, name, func)
    webhook_profiler = cProfile.Profile()
    webhook_profiler.enable()
    for body in payloads[half:]:
        client.post(url, body, content_type="application/json", HTTP_AUTHORIZATION=auth)
    webhook_profiler.disable()
    OrmQ.objects.all().delete()
    if as_received:
        begin, cpu_begin = time.perf_counter(), time.process_time()
        unpacked = 0
        while taken := intake.do_unpack_webhook_deliveries(size):
            unpacked += taken
        # process_time: the blob writers are threads of this process.
        wall["unpack"], cpu["unpack"] = time.perf_counter() - begin, time.process_time() - cpu_begin
    begin = time.thread_time()
    parsed = [AnymailInboundMessage.parse_raw_mime(mail.raw.decode()) for mail in batches[3]]
    cpu["parse_raw_mime"] = time.thread_time() - begin
    begin = time.thread_time()
    for message in parsed:
        message_bytes(message)
    cpu["message_bytes"] = time.thread_time() - begin

    print(f"In-process profile on {connection.vendor}: {count} mails per pass, states {dict(states)}")
    rows = [
        ["store (do_store_inbound, no enqueue)", wall["store"] * ms, cpu["store"] * ms],
        [f"process (do_process_batch, {size} per batch), total", wall["process"] * ms, cpu["process"] * ms],
    ]
    for name in stages:
        rows.append([f"  {name}", wall[name] * ms, cpu[name] * ms])
    rest_wall = wall["process"] - sum(wall[name] for name in stages)
    rest_cpu = cpu["process"] - sum(cpu[name] for name in stages)
    rows.append(["  rest of do_process_batch", rest_wall * ms, rest_cpu * ms])
    rows.append([f"webhook POST {url} (statuses {dict(statuses)})", wall["webhook"] * ms, cpu["webhook"] * ms])
    scale = count / half
    for name, label in (
        ("message_bytes", "reports.intake.message_bytes (re-serialise)"),
        (store_name, f"{store_name} (with the enqueue below)"),
        ("wake_processing", "  wake_processing (reads the flag; upsert and async_task when it is off)"),
    ):
        rows.append([f"  {label}", wall[f"webhook:{name}"] * ms * scale, cpu[f"webhook:{name}"] * ms * scale])
    if as_received:
        rows.append(
            [
                f"unpack (do_unpack_webhook_deliveries, {size} per batch)",
                wall["unpack"] * ms,
                cpu["unpack"] * ms,
            ]
        )
    rows.append(["  AnymailInboundMessage.parse_raw_mime (measured alone)", float("nan"), cpu["parse_raw_mime"] * ms])
    print(table(["stage", "wall ms/msg", "CPU ms/msg"], rows, "Time per message by stage (passes 1 and 4)"))
    where = "a server process" if connection.vendor != "sqlite" else "in-process"
    print(f"wall - CPU = waiting: database round trips ({where}), file I/O, and for a CPU when the machine is busy")
    print()
    store_counts = [len(x) for x in store_sql]
    process_counts = [len(x) / len(chunk) for x, chunk in zip(process_sql, process_batches, strict=True)]
    print(
        table(
            ["path", "mean", "p50", "max"],
            [
                [
                    "store + enqueue (ORM broker), statements/msg",
                    statistics.fmean(store_counts),
                    percentile(store_counts, 50),
                    max(store_counts),
                ],
                [
                    "process, statements/msg",
                    statistics.fmean(process_counts),
                    percentile(process_counts, 50),
                    max(process_counts),
                ],
            ],
            "SQL statements per message (pass 2, CaptureQueriesContext)",
        )
    )
    for title, batch, messages in (
        ("store + enqueue", store_sql, len(store_sql)),
        ("process", process_sql, len(pending)),
    ):
        shapes = Counter(sql_shape(sql) for statements in batch for sql in statements)
        print(f"\n{title}: statements per message by shape")
        for shape, number in shapes.most_common(40):
            if number / messages >= 0.005:
                print(f"  {number / messages:5.2f}  {shape}")
    for what, prof, sort in (
        ("processing (pass 3)", profiler, "tottime"),
        ("processing (pass 3)", profiler, "cumulative"),
        ("webhook requests (pass 4)", webhook_profiler, "cumulative"),
        ("webhook requests (pass 4)", webhook_profiler, "tottime"),
    ):
        buffer = io.StringIO()
        pstats.Stats(prof, stream=buffer).sort_stats(sort).print_stats(top)
        text = buffer.getvalue()
        print(f"\ncProfile of {what}, top {top} by {sort}:")
        print(text[text.find("   ncalls") :].rstrip())


def run_profile(bench: Bench, db: str, count: int) -> None:
    STOP.clear()
    database = bench.database(db)
    var_dir = bench.workdir / f"profile-{db}"
    var_dir.mkdir(parents=True)
    try:
        env = bench.env_for(Config(db, "cli", "orm", 1), var_dir, database.fresh(var_dir))
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--_profile-child",
            str(count),
            "--seed",
            str(bench.args.seed),
            "--profile-top",
            str(bench.args.profile_top),
        ]
        started = PROCS.start("profile", command, env, var_dir / "profile.log")
        started.popen.wait()
        with PROCS.lock:
            PROCS.running.remove(started)
        print((var_dir / "profile.log").read_text())
    finally:
        database.drop()


# --- Main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="mails per run (default 2000)")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--path", choices=["cli", "webhook", "both"], default="both")
    parser.add_argument(
        "--workers", default="2", help="q-cluster workers (ABUSEDESK_Q_WORKERS); a list like 2,3,4 runs each"
    )
    parser.add_argument("--broker", default="orm", help="orm, redis or orm,redis (REDIS_URL)")
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/15",
        help="Redis for --broker redis (a database the bench may purge)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per combination; tables show medians")
    parser.add_argument("--threads", type=int, default=8, help="concurrent HTTP posters on the webhook path")
    parser.add_argument(
        "--server",
        choices=["auto", "gunicorn", "runserver"],
        default="auto",
        help="HTTP server for the webhook path (auto: gunicorn when installed, else runserver)",
    )
    parser.add_argument("--server-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="start posting to a fresh server (by default every worker loads its URLconf first)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the server only (e.g. DB_CONN_MAX_AGE=60)",
    )
    parser.add_argument("--esp", choices=["postmark", "sparkpost"], default="postmark", help="webhook payload format")
    parser.add_argument("--cli-batch", type=int, default=0, help="files per ingest_mail invocation (0: all in one)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=240, help="seconds per run before giving up")
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between database polls")
    parser.add_argument(
        "--settle",
        type=float,
        default=10,
        help="before each run, wait up to this many seconds for "
        "a quiet second on the machine (under 25%% busy); 0 to skip",
    )
    parser.add_argument("--big", action="store_true", help="also ingest one large message and report peak RSS")
    parser.add_argument("--big-mb", type=float, default=25, help="size of the large message's attachment in MiB")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also profile N mails in-process (stages, SQL per message, cProfile)",
    )
    parser.add_argument("--profile-top", type=int, default=25)
    parser.add_argument(
        "--what-if",
        default="none",
        help="settings experiments, comma-separated; each is none or tweaks joined by + ("
        + ", ".join(WHAT_IF)
        + "), e.g. none,no-results,no-results+preload-langid",
    )
    parser.add_argument(
        "--debug", action="store_true", help="run the desk with DEBUG=true (default false, as in production)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, files)")
    parser.add_argument("--_profile-child", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    _reexec_in_venv()
    args = parse_args(argv)
    if args.server == "auto":
        import importlib.util

        args.server = "gunicorn" if importlib.util.find_spec("gunicorn") else "runserver"
    if args._profile_child:
        profile_child(args._profile_child, args.seed, args.profile_top)
        return 0
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    paths = ["cli", "webhook"] if args.path == "both" else [args.path]
    workers = [int(w) for w in str(args.workers).split(",")]
    brokers = [b.strip() for b in args.broker.split(",")]
    variants = ["" if v.strip() == "none" else v.strip() for v in args.what_if.split(",")]
    for variant in variants:
        unknown = [t for t in variant.split("+") if variant and t not in WHAT_IF]
        if unknown:
            raise SystemExit(f"--what-if: unknown {unknown}; known: none, {', '.join(WHAT_IF)}")
    if set(brokers) - {"orm", "redis"}:
        raise SystemExit("--broker takes orm, redis or both")

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Explicitly, so that Ctrl-C also works when a shell started the benchmark with SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupted)
    bench = Bench(args)
    sampler = Sampler()
    sampler.start()
    results: list[RunResult] = []
    try:
        if args.n > 0:
            begin = time.monotonic()
            bench.mails = _mailgen.generate(args.n, seed=args.seed)
            bench.payloads = [webhook_payload(args.esp, m) for m in bench.mails]
            kinds = Counter(m.kind for m in bench.mails)
            print(
                f"generated {args.n} mails in {time.monotonic() - begin:.1f} s (seed {args.seed}): "
                f"{sum(m.storm for m in bench.mails)} about the storm channel, "
                f"{sum(1 for m in bench.mails if m.attachments)} with attachments, "
                + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
                + f"; {len({m.language for m in bench.mails})} languages, "
                f"mean size {statistics.fmean(len(m.raw) for m in bench.mails) / 1024:.1f} KiB",
                flush=True,
            )
            print(
                f"webhook: {args.esp} payloads from {args.threads} threads to {args.server}"
                + (f" ({args.server_workers} workers)" if args.server == "gunicorn" else "")
                + f"; cli: ingest_mail, {args.cli_batch or 'all'} files per invocation; DEBUG={'true' if args.debug else 'false'}",
                flush=True,
            )
            for variant in filter(None, variants):
                print(f"what-if {variant}: " + "; ".join(WHAT_IF[t][0] for t in variant.split("+")), flush=True)
            configs = [
                Config(d, p, b, w, v) for d in dbs for p in paths for b in brokers for w in workers for v in variants
            ]
            for repeat in range(args.repeat):
                for config in configs:
                    result = bench.run(config, repeat)
                    results.append(result)
                    print(
                        f"[{repeat + 1}/{args.repeat}] {config.label():<28} {result.rate:7.1f} msg/s  "
                        f"intake {result.intake_rate:7.1f}/s  p50 {result.p50:8.0f} ms  p99 {result.p99:8.0f} ms  "
                        f"states {result.states}"
                        + ("" if result.complete else "  INCOMPLETE (timeout)")
                        + (f"  errors {result.checks['errors']}" if result.checks["errors"] else "")
                        + (f"  submission: {result.checks['submit_error']}" if "submit_error" in result.checks else ""),
                        flush=True,
                    )
            migrate = ", ".join(f"{k} {d.migrate_seconds:.1f} s" for k, d in bench.databases.items())
            print(f"(migrations ran once per database kind into a template: {migrate}; not part of any measurement)")
            summarize(results)
        if args.big:
            rows = []
            for db in dbs:
                rows += bench.big(db)
            print()
            print(
                table(
                    ["db", "path", "process", "raw MB", "peak RSS MB", "seconds", "result"],
                    [
                        [r["db"], r["how"], r["process"], r["raw_mb"], r["peak_mb"], r["seconds"], r["state"]]
                        for r in rows
                    ],
                    f"One large message ({args.big_mb:g} MiB attachment); target: peak RSS < 300 MB",
                )
            )
        if args.profile:
            for db in dbs:
                run_profile(bench, db, args.profile)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything the benchmark started", file=sys.stderr)
        if results:
            summarize(results)
        return 130
    finally:
        sampler.halt.set()
        bench.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
