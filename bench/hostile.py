#!/usr/bin/env python3
# ruff: noqa: E402  (sys.path is fixed before the imports, see below)
"""Hostile-input benchmark: SECURITY.md's resource-exhaustion inputs through the worker's path.

    .venv/bin/python bench/hostile.py                          # every input, SQLite, 3 runs each
    .venv/bin/python bench/hostile.py --db postgres --only M2b,R9c,E9e
    .venv/bin/python bench/hostile.py --checkout /tmp/old:before --checkout .:after   # in turns

Each input is built in memory (deterministic; `--list` names them), stored with
`do_store_inbound` and processed with `do_process_inbound`, as a q-cluster worker does it, in a
child process of its own with the language model already loaded. The time is the wall-clock and
CPU time of that processing (parse, entities, language, threading, attachments written with their
fsyncs, all inside the same 10 s budget the worker enforces); peak RSS is the child's. Every
input must stay within SECURITY.md's 5 s budget.

`--checkout PATH[:LABEL]` (repeatable) runs the same inputs with the code of another tree, in
turns (run 1 of each tree, then run 2...), so two versions are compared in the same minutes of a
shared machine; `git archive <commit> | tar -x -C /tmp/old` makes such a tree. Each tree gets a
fresh database (SQLite in a temporary folder, or a PostgreSQL database it creates and drops).
"""

from __future__ import annotations

import os
import sys

# This folder holds a queue.py that would shadow the standard library: off the path first.
_HERE = os.path.dirname(os.path.realpath(__file__))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _HERE]

import argparse
import base64
import contextlib
import json
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PG_HOST = "/var/run/postgresql"
BUDGET_SECONDS = 5.0
MiB = 1024 * 1024
# Attachments are stored by content hash: without bytes of its own, a repeated run would find
# every blob written already and measure no writes at all.
_RUN_SALT = os.urandom(8).hex()


def _mail(header: str, body: bytes | str) -> bytes:
    head = "From: Reporter <reporter@example.org>\nTo: abuse@abusedesk.localhost\nMessage-ID: <hostile@example.org>\n"
    return (head + header).encode() + b"\n" + (body.encode() if isinstance(body, str) else body)


def _multipart(parts: Iterator[str], subtype: str = "mixed") -> bytes:
    body = "".join(f"--B\n{part}\n" for part in parts) + "--B--\n"
    return _mail(f'Subject: parts\nContent-Type: multipart/{subtype}; boundary="B"\n', body)


def _nested_multiparts(depth: int) -> bytes:
    opening = "".join(f'--b{i}\nContent-Type: multipart/mixed; boundary="b{i + 1}"\n\n' for i in range(depth))
    closing = "".join(f"--b{i}--\n" for i in reversed(range(depth + 1)))
    return _mail(
        'Subject: depth\nContent-Type: multipart/mixed; boundary="b0"\n',
        opening + f"--b{depth}\n\nt.me/deep\n" + closing,
    )


def _nested_messages(depth: int) -> bytes:
    inner = "Subject: innermost\n\nt.me/deep_channel\n"
    for _ in range(depth - 1):
        inner = "Content-Type: message/rfc822\n\n" + inner
    return _mail("Subject: depth\nContent-Type: message/rfc822\n", inner)


def _html(markup: str) -> bytes:
    return _mail("Subject: html\nContent-Type: text/html; charset=utf-8\n", markup)


def _text(text: str) -> bytes:
    return _mail("Subject: text\nContent-Type: text/plain; charset=utf-8\n", text)


def _flanker_endless() -> bytes:
    return (ROOT / "tests" / "data" / "mail" / "flanker-messages" / "enclosed-endless.eml").read_bytes()


def _encoded_words(count: int) -> bytes:
    word = "=?utf-8?b?" + base64.b64encode("т.ме/chan ".encode()).decode() + "?="
    return _mail("Subject: " + " ".join([word] * count) + "\n", "body\n")


def _long_cyrillic_candidates(size: int) -> str:
    """Anchors followed by 2,000 non-ASCII letters: the most expensive candidates measured."""
    unit = "t.me/" + "т" * 2000 + " "
    return unit * (size // len(unit))


INPUTS: dict[str, tuple[str, Callable[[], bytes]]] = {
    "M1a": ("1,000 nested multipart/mixed", lambda: _nested_multiparts(1000)),
    "M1b": ("1,000 nested message/rfc822", lambda: _nested_messages(1000)),
    "M2a": (
        "10,000 tiny text parts",
        lambda: _multipart(f"Content-Type: text/plain\n\npart{i} t.me/c{i:05d}x" for i in range(10_000)),
    ),
    "M2b": (
        "10,000 tiny attachments",
        lambda: _multipart(
            f"Content-Type: image/png; name=p{i}.png\nContent-Disposition: attachment; filename=p{i}.png\n"
            f"Content-Transfer-Encoding: base64\n\n{base64.b64encode(f'PNG-DATA-{i}-{_RUN_SALT}'.encode()).decode()}"
            for i in range(10_000)
        ),
    ),
    "M2c": ("flanker enclosed-endless.eml (3,043 parts)", _flanker_endless),
    "M3a": ("1 MB Subject", lambda: _mail("Subject: " + "x" * MiB + "\n", "body t.me/subject_flood\n")),
    "M3b": (
        "50,000 Received lines, From and Subject after them",
        lambda: (
            ("".join(f"Received: from relay{i}.example.net by mx.example.org\n" for i in range(50_000))).encode()
            + _mail("Subject: after the relays\n", "t.me/late_channel\n")
        ),
    ),
    "M3c": (
        "200 KB folded header",
        lambda: _mail("Subject: folded\nX-Folded: " + "\n ".join(["y" * 70] * 2900) + "\n", "body\n"),
    ),
    "M4a": ("one 100 MB line (over the 50 MiB limit)", lambda: _text("x" * (100 * MiB))),
    "M4b": (
        "20 MB without any newline",
        lambda: b"Message-ID: <hostile@example.org> From: r@example.org t.me/x " + b"y" * (20 * MiB),
    ),
    "M5": (
        "20 MB multipart whose boundary never appears",
        lambda: _mail('Subject: b\nContent-Type: multipart/mixed; boundary="never"\n', "line of text t.me/x\n" * (MiB)),
    ),
    "M6": (
        "20 MB of damaged base64",
        lambda: _mail("Subject: b64\nContent-Transfer-Encoding: base64\n", ("QUJD=RE!F" * 8 + "\n") * (20 * MiB // 73)),
    ),
    "H2": ("10,000 encoded words in the Subject", lambda: _encoded_words(10_000)),
    "R9a": ("20 MB HTML, 100,000 nested <div>", lambda: _html("<div>" * 100_000 + "t.me/nested" + "x" * (20 * MiB))),
    "R9b": ("20 MB HTML, 1M+ entities", lambda: _html("<p>" + "&amp;&#x74;&lt;" * (20 * MiB // 15) + "</p>")),
    "R9c": ("20 MB HTML of tags only", lambda: _html("<p>" * (20 * MiB // 3))),
    "E9a": ("100,000 candidate URLs", lambda: _text(" ".join(f"https://t.me/c{i:06d}x" for i in range(100_000)))),
    "E9b": ("a 5 MB single word", lambda: _text("a" * (5 * MiB))),
    "E9c": ("5 MB of ((((", lambda: _text("(" * (5 * MiB) + "t.me/chan" + ")" * 1000)),
    "E9d": ("5 MB of @@@@", lambda: _text("@" * (5 * MiB))),
    "E9e": ("5 MB of t.me/ + 2,000 Cyrillic letters", lambda: _text(_long_cyrillic_candidates(5 * MiB))),
    "E9f": (
        "E9e in the body and in a forwarded message",
        lambda: _mail(
            'Subject: fwd\nContent-Type: multipart/mixed; boundary="B"\n',
            "--B\nContent-Type: text/plain; charset=utf-8\n\n"
            + _long_cyrillic_candidates(3 * MiB)
            + "\n--B\nContent-Type: message/rfc822\n\nSubject: inner\nContent-Type: text/plain; charset=utf-8\n\n"
            + _long_cyrillic_candidates(3 * MiB)
            + "\n--B--\n",
        ),
    ),
}


# --- the child: one input through the worker's path, with the code of one tree ------------------


def child(name: str, run: int) -> None:
    import django

    django.setup()
    from reports.actions import do_process_inbound, do_store_inbound
    from reports.language import detect_language
    from reports.models import Report

    detect_language("The model is loaded before the clock starts, as in a running worker.")
    raw = INPUTS[name][1]()
    # A Message-ID of its own per input and run (or, for a file with its own, a line at its end):
    # the same bytes, or one Message-ID with the same body, would be a redelivery, which is not
    # processed again.
    unique = f"{name}-{run}-{time.time_ns()}"
    if b"<hostile@example.org>" in raw:
        raw = raw.replace(b"<hostile@example.org>", f"<hostile-{unique}@example.org>".encode(), 1)
    else:
        raw += f"\nbench run {unique}\n".encode()
    stored = do_store_inbound(raw, source="bench", enqueue=False)
    del raw
    started, cpu_started = time.perf_counter(), time.process_time()
    message = do_process_inbound(stored.message.pk)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    report = Report.objects.filter(inbound=message).first()
    print(
        json.dumps(
            {
                "wall": wall,
                "cpu": cpu,
                "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "state": message.state,
                "parse_error": report.parse_error if report else message.error[:200],
            }
        )
    )


# --- the parent ------------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(tree: Path, db: str, label: str) -> Iterator[dict[str, str]]:
    """Environment for a child of `tree` with a migrated database of its own, dropped afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=f"abusedesk-hostile-{label}-"))
    env = {
        **os.environ,
        "ABUSEDESK_VAR_DIR": str(folder),
        "DJANGO_SETTINGS_MODULE": "abusedesk.settings",
        "DEBUG": "false",
    }
    pg_name = f"abusedesk_bench_hostile_{label}".replace("-", "_")
    if db == "postgres":
        subprocess.run(["dropdb", "-h", PG_HOST, "--if-exists", pg_name], check=True)
        subprocess.run(["createdb", "-h", PG_HOST, pg_name], check=True)
        env["DATABASE_URL"] = f"postgres:///{pg_name}?host={PG_HOST}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{folder / 'bench.sqlite3'}"
    try:
        subprocess.run([str(VENV_PYTHON), "manage.py", "migrate", "-v0"], cwd=tree, env=env, check=True)
        yield env
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if db == "postgres":
            subprocess.run(["dropdb", "-h", PG_HOST, "--if-exists", pg_name], check=False)


def run_child(tree: Path, env: dict[str, str], name: str, run: int) -> dict[str, object]:
    code = (
        f"import sys; sys.path.insert(0, {str(tree)!r}); sys.argv = ['hostile']; "
        f"import importlib.util; spec = importlib.util.spec_from_file_location('hostile', {__file__!r}); "
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
        f"module.child({name!r}, {run})"
    )
    result = subprocess.run(
        [str(VENV_PYTHON), "-c", code], cwd=tree, env=env, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        return {
            "error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
        }
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated input names (see --list)")
    parser.add_argument(
        "--checkout", action="append", default=[], help="PATH[:LABEL] of a tree to measure (repeatable)"
    )
    parser.add_argument("--list", action="store_true", help="list the inputs and exit")
    args = parser.parse_args()
    if args.list:
        for name, (what, _) in INPUTS.items():
            print(f"{name:5s} {what}")
        return
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(INPUTS)
    unknown = set(names) - set(INPUTS)
    if unknown:
        parser.error(f"unknown inputs: {', '.join(sorted(unknown))}")
    trees = []
    for spec in args.checkout or [f"{ROOT}:this"]:
        path, _, label = spec.partition(":")
        trees.append((Path(path).resolve(), label or Path(path).name))
    results: dict[tuple[str, str], list[dict[str, object]]] = {}
    with contextlib.ExitStack() as stack:
        envs = {label: stack.enter_context(fresh_database(tree, args.db, label)) for tree, label in trees}
        for run in range(1, args.repeat + 1):
            for name in names:
                for tree, label in trees:
                    outcome = run_child(tree, envs[label], name, run)
                    results.setdefault((name, label), []).append(outcome)
                    print(f"run {run} {name:4s} {label:8s} {json.dumps(outcome)}", file=sys.stderr, flush=True)
    labels = [label for _, label in trees]
    print(
        f"\n{args.db}, medians of {args.repeat} runs; wall-clock s (CPU s) of processing one message; peak RSS of the worker\n"
    )
    header = "| input | " + " | ".join(f"{label}" for label in labels) + " | peak RSS | outcome |"
    print(header)
    print("|" + "---|" * (len(labels) + 3))
    for name in names:
        cells = []
        last: dict[str, object] = {}
        for label in labels:
            runs = [r for r in results[(name, label)] if "error" not in r]
            if not runs:
                cells.append("error: " + str(results[(name, label)][0].get("error", ""))[:60])
                continue
            wall = statistics.median(float(r["wall"]) for r in runs)  # type: ignore[arg-type]
            cpu = statistics.median(float(r["cpu"]) for r in runs)  # type: ignore[arg-type]
            flag = " **over 5 s**" if wall > BUDGET_SECONDS else ""
            cells.append(f"{wall:.2f} ({cpu:.2f}){flag}")
            last = runs[-1]
        rss = f"{float(last['rss_mb']):.0f} MB" if last else ""  # type: ignore[arg-type]
        outcome = f"{last.get('state', '')}; {last.get('parse_error', '') or 'no limit hit'}" if last else ""
        print(f"| {name} {INPUTS[name][0]} | " + " | ".join(cells) + f" | {rss} | {outcome} |")


if __name__ == "__main__":
    main()
