"""Anchors: the audit log's count and head hash, written outside the database to a file, syslog
or a signed webhook, on the q-cluster's schedule."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_q.models import Schedule

from moderation.actions import Actor, do_change_case_priority
from moderation.audit import GENESIS
from moderation.audit.anchors import (
    KIND,
    Anchor,
    AnchorFailed,
    current_anchor,
    read_anchors,
    write_anchor,
)
from moderation.models import AuditEntry
from moderation.tasks import anchor_audit
from tests.moderation.replies.fixtures import report_from

# The ports this suite's servers may use (the brief's range), so parallel suites never collide.
PORTS = range(18740, 18760)


@pytest.fixture
def entries(ingest, alice):
    case = report_from(ingest).case
    for priority in (0, 2, 3):
        do_change_case_priority(case, priority=priority, actor=Actor(user=alice))
    return list(AuditEntry.objects.order_by("id"))


def _bind(sock_type: int) -> socket.socket:
    for port in PORTS:
        sock = socket.socket(socket.AF_INET, sock_type)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        return sock
    raise RuntimeError(f"no free port in {PORTS}")


def test_the_anchor_is_the_count_and_the_head_of_the_log(entries, settings):
    anchor = current_anchor()
    head = entries[-1]
    assert (anchor.count, anchor.head, anchor.head_id, anchor.key_id) == (
        3,
        head.hash,
        head.pk,
        settings.ABUSEDESK_AUDIT_KEY_ID,
    )
    assert Anchor.from_json(anchor.to_json()) == anchor
    assert json.loads(anchor.to_json())["type"] == KIND


def test_the_anchor_of_an_empty_log_is_the_genesis_hash(db):
    anchor = current_anchor()
    assert (anchor.count, anchor.head, anchor.head_id) == (0, GENESIS, None)


def test_a_file_place_gets_one_json_line_per_anchor_appended(entries, tmp_path, settings, alice):
    path = tmp_path / "audit-anchors.jsonl"
    settings.ABUSEDESK_AUDIT_ANCHORS = [f"file:{path}"]
    assert anchor_audit() == 1
    do_change_case_priority(entries[0].case, priority=0, actor=Actor(user=alice))
    assert anchor_audit() == 1
    lines = path.read_text().splitlines()
    assert [Anchor.from_json(line).count for line in lines] == [3, 4]
    assert [a.head for a in read_anchors(path)] == [entries[-1].hash, AuditEntry.objects.order_by("id").last().hash]
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_syslog_place_on_a_unix_socket_gets_the_anchor(entries, tmp_path):
    path = tmp_path / "log.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(5)
        write_anchor(current_anchor(), [f"syslog:{path}"])
        message = server.recv(65536).decode()
    # <PRI> is facility auth (4) * 8 + notice (5).
    assert message.startswith("<37>abusedesk-audit: {")
    kept = tmp_path / "from-syslog.log"
    kept.write_text(f"Dec  2 10:00:00 desk {message[4:]}\n")
    assert read_anchors(kept) == [Anchor.from_json(message.partition(": ")[2])]
    assert read_anchors(kept)[0].head == entries[-1].hash


def test_a_syslog_place_over_udp_gets_the_anchor(entries):
    with _bind(socket.SOCK_DGRAM) as server:
        server.settimeout(5)
        port = server.getsockname()[1]
        write_anchor(current_anchor(), [f"syslog://127.0.0.1:{port}"])
        message = server.recv(65536).decode()
    assert Anchor.from_json(message.partition(": ")[2]).head == entries[-1].hash


class _Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200


@pytest.fixture
def receiver() -> Iterator[tuple[_Receiver, str]]:
    state = _Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append((dict(self.headers), body))
            self.send_response(state.status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    sock = _bind(socket.SOCK_STREAM)
    port = sock.getsockname()[1]
    sock.close()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{port}/anchors"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_an_http_place_gets_the_anchor_signed_like_enforcement_webhooks(entries, receiver, settings):
    state, url = receiver
    settings.ABUSEDESK_AUDIT_ANCHOR_SECRET = "anchor-secret-" * 3
    anchor = current_anchor()
    assert write_anchor(anchor, [url]) == 1
    ((headers, body),) = state.requests
    assert Anchor.from_json(body.decode()) == anchor
    assert headers["X-Abusedesk-Event"] == KIND
    timestamp, _, mac = headers["X-Abusedesk-Signature"].partition(",v1=")
    expected = hmac.new(
        settings.ABUSEDESK_AUDIT_ANCHOR_SECRET.encode(), f"{timestamp[2:]}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(mac, expected)


def test_a_failing_place_does_not_stop_the_others_and_fails_the_task(entries, receiver, tmp_path, settings):
    state, url = receiver
    state.status = 503
    settings.ABUSEDESK_AUDIT_ANCHOR_SECRET = "anchor-secret-" * 3
    path = tmp_path / "audit.jsonl"
    place = url.replace("http://", "http://desk:hunter2@")
    settings.ABUSEDESK_AUDIT_ANCHORS = [place, f"file:{tmp_path}/missing-dir/a.jsonl", f"file:{path}"]
    with pytest.raises(AnchorFailed) as failed:
        anchor_audit()
    assert f"{url}: answered 503" in str(failed.value)
    assert "missing-dir/a.jsonl: [Errno 2]" in str(failed.value)
    assert "hunter2" not in str(failed.value)
    assert len(read_anchors(path)) == 1 and len(state.requests) == 1


def test_an_unknown_kind_of_place_is_refused_by_name(entries):
    with pytest.raises(AnchorFailed, match="ftp://x/y: unknown kind of place"):
        write_anchor(current_anchor(), ["ftp://x/y"])


def test_the_migration_schedules_the_anchor_every_five_minutes(db):
    schedule = Schedule.objects.get(name="abusedesk: anchor audit log")
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        "moderation.tasks.anchor_audit",
        Schedule.MINUTES,
        5,
        -1,
    )


def test_the_anchor_audit_command_writes_now(entries, tmp_path, settings, capsys):
    path = tmp_path / "audit.jsonl"
    settings.ABUSEDESK_AUDIT_ANCHORS = [f"file:{path}"]
    call_command("anchor_audit")
    assert capsys.readouterr().out.strip() == f"anchored 3 entries, head {entries[-1].hash}, in 1 places"
    assert read_anchors(path)[0].count == 3


def test_the_anchor_audit_command_needs_a_place(db, settings):
    settings.ABUSEDESK_AUDIT_ANCHORS = []
    with pytest.raises(CommandError, match="ABUSEDESK_AUDIT_ANCHORS is not set"):
        call_command("anchor_audit")


def test_verify_audit_reads_anchors_kept_elsewhere(entries, tmp_path, capsys):
    kept = tmp_path / "from-receiver.jsonl"
    kept.write_text(current_anchor().to_json() + "\n")
    call_command("verify_audit", anchors=[kept])
    assert capsys.readouterr().out.splitlines()[-1] == f"anchors: 1 checked, from {kept}"


def test_verify_audit_refuses_a_damaged_anchor_file(entries, tmp_path):
    kept = tmp_path / "anchors.jsonl"
    kept.write_text(current_anchor().to_json() + '\n{"type": "abusedesk.audit-anchor", "count": -1}\n')
    with pytest.raises(CommandError, match=r"anchors.jsonl, line 2: count must be a non-negative integer"):
        call_command("verify_audit", anchors=[kept])


def test_verify_audit_refuses_a_missing_anchor_file(entries, tmp_path, settings):
    settings.ABUSEDESK_AUDIT_ANCHORS = [f"file:{tmp_path}/gone.jsonl"]
    with pytest.raises(CommandError, match="cannot read anchors: .*gone.jsonl"):
        call_command("verify_audit")
