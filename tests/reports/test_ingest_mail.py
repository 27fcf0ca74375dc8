"""The MTA pipe and file intake: `manage.py ingest_mail`."""

from __future__ import annotations

import io
import mailbox
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from reports.models import InboundMessage, Report
from reports.rawstore import read_blob
from tests.mail import build_mail

ROOT = Path(__file__).parents[2]
WRAPPER = ROOT / "abusedesk" / "mta-pipe.sh"


def _pipe(monkeypatch: pytest.MonkeyPatch, data: bytes, *args: str) -> int:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    with pytest.raises(SystemExit) as exit_info:
        call_command("ingest_mail", *args)
    return int(exit_info.value.code or 0)


@pytest.mark.django_db
def test_pipe_stores_the_exact_bytes_and_exits_0(monkeypatch):
    raw = build_mail()
    assert _pipe(monkeypatch, raw) == 0
    message = InboundMessage.objects.get()
    assert (message.source, message.state) == ("pipe", InboundMessage.State.PENDING)
    assert read_blob(message.raw.name) == raw


def test_the_pipe_does_not_import_what_only_webhooks_and_processing_need(tmp_path):
    """A pipe transport starts a process per mail: the svix and boto3 SDKs (anymail's Resend and
    SES webhooks) and numpy (language detection) cost it 0.7 s of CPU and 48 MB each time."""
    code = (
        "import sys, django; django.setup();"
        "import reports.management.commands.ingest_mail;"
        "print(sorted(m for m in ('svix', 'boto3', 'numpy', 'py3langid', 'anymail.webhooks') if m in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "abusedesk.settings", "ABUSEDESK_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=Path(__file__).parents[2], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.django_db
def test_pipe_with_sync_processes_the_message(monkeypatch):
    assert _pipe(monkeypatch, build_mail(), "--sync") == 0
    assert Report.objects.get().case is not None


@pytest.mark.django_db
def test_pipe_exits_65_for_data_that_is_not_mail(monkeypatch):
    assert _pipe(monkeypatch, b"\x89PNG\r\n\x1a\n\x00\x00binary") == 65
    assert _pipe(monkeypatch, b"") == 65
    assert not InboundMessage.objects.exists()


@pytest.mark.django_db
def test_pipe_exits_75_when_the_message_cannot_be_stored(monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("reports.management.commands.ingest_mail.do_store_inbound", broken)
    assert _pipe(monkeypatch, build_mail()) == 75


@pytest.mark.django_db
def test_files_mbox_and_maildir_are_stored_with_a_summary(tmp_path, capsys):
    eml = tmp_path / "one.eml"
    eml.write_bytes(build_mail("t.me/one_channel", message_id="<1@example.org>"))
    box = mailbox.mbox(tmp_path / "box.mbox")
    box.add(build_mail("From the start\nFrom here on t.me/two_channel", message_id="<2@example.org>"))
    box.add(build_mail("t.me/three_channel", message_id="<3@example.org>"))
    box.flush()
    maildir = mailbox.Maildir(tmp_path / "Maildir")
    maildir.add(build_mail("t.me/four_channel", message_id="<4@example.org>"))
    call_command(
        "ingest_mail", str(eml), str(eml), "--mbox", str(tmp_path / "box.mbox"), "--maildir", str(tmp_path / "Maildir")
    )
    assert InboundMessage.objects.count() == 4
    assert "duplicates 1, stored 4" in capsys.readouterr().out


@pytest.mark.django_db
def test_maildir_symlinks_are_not_followed(tmp_path):
    maildir = mailbox.Maildir(tmp_path / "Maildir")
    maildir.add(build_mail())
    secret = tmp_path / "secret.eml"
    secret.write_bytes(build_mail("secret", message_id="<secret@example.org>"))
    os.symlink(secret, tmp_path / "Maildir" / "new" / "link")
    call_command("ingest_mail", "--maildir", str(tmp_path / "Maildir"))
    assert InboundMessage.objects.count() == 1


@pytest.mark.django_db
def test_sync_flag_reports_processing_states(tmp_path, capsys):
    eml = tmp_path / "auto.eml"
    eml.write_bytes(build_mail(headers={"Auto-Submitted": "auto-replied"}))
    call_command("ingest_mail", "--sync", str(eml))
    assert "processed: processed 1" in capsys.readouterr().out
    assert Report.objects.get().kind == Report.Kind.AUTOMATIC


@pytest.mark.django_db
def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("ingest_mail", str(tmp_path / "nope.eml"))


@pytest.mark.django_db
def test_files_are_stored_in_batches_and_wake_one_drain(
    tmp_path, capsys, monkeypatch, django_capture_on_commit_callbacks
):
    woken: list[bool] = []
    monkeypatch.setattr("reports.tasks.wake_processing", lambda: woken.append(True))
    monkeypatch.setattr("reports.management.commands.ingest_mail.BATCH_MESSAGES", 4)
    paths = []
    for n in range(10):
        path = tmp_path / f"{n}.eml"
        path.write_bytes(build_mail(f"t.me/channel_{n}", message_id=f"<{n}@example.org>"))
        paths.append(str(path))
    with django_capture_on_commit_callbacks(execute=True):
        call_command("ingest_mail", *paths, paths[0])
    assert "duplicates 1, stored 10" in capsys.readouterr().out
    assert InboundMessage.objects.filter(state=InboundMessage.State.PENDING).count() == 10
    assert woken == [True, True, True]  # one per transaction of 4, 4 and 3 files


@pytest.mark.django_db
def test_when_a_batch_cannot_be_stored_each_message_is_tried_and_named(tmp_path, capsys, monkeypatch):
    from reports.management.commands import ingest_mail

    def broken_batch(*args, **kwargs):
        raise OSError("batch insert refused")

    real = ingest_mail.do_store_inbound

    def picky(raw, **kwargs):
        if b"bad_channel" in raw:
            raise OSError("disk full")
        return real(raw, **kwargs)

    monkeypatch.setattr(ingest_mail, "do_store_inbound_many", broken_batch)
    monkeypatch.setattr(ingest_mail, "do_store_inbound", picky)
    good, bad = tmp_path / "good.eml", tmp_path / "bad.eml"
    good.write_bytes(build_mail("t.me/good_channel", message_id="<g@example.org>"))
    bad.write_bytes(build_mail("t.me/bad_channel", message_id="<b@example.org>"))
    with pytest.raises(CommandError, match="1 message"):
        call_command("ingest_mail", str(good), str(bad))
    captured = capsys.readouterr()
    assert f"{bad}: could not store: disk full" in captured.err
    assert "failed 1, stored 1" in captured.out
    assert InboundMessage.objects.count() == 1


@pytest.mark.django_db
def test_a_message_stored_by_another_path_during_a_batch_is_a_duplicate(monkeypatch):
    from reports import actions

    raws = [build_mail(f"t.me/channel_{n}", message_id=f"<{n}@example.org>") for n in range(3)]
    real = actions._stored_with

    def racing(digests):
        # The batch looks before smtpd stores raws[1]: the lookup misses it, the insert conflicts.
        seen = real(digests)
        actions.do_store_inbound(raws[1], source="smtp", enqueue=False)
        return seen

    monkeypatch.setattr(actions, "_stored_with", racing)
    results = actions.do_store_inbound_many(raws, source="cli", enqueue=False)
    assert [r.created for r in results] == [True, False, True]
    assert [r.message.source for r in results] == ["cli", "smtp", "cli"]
    assert InboundMessage.objects.count() == 3


@pytest.mark.django_db
def test_pipe_records_the_envelope_sender_and_first_recipient(monkeypatch):
    """Postfix expands --recipient=${recipient} once per recipient; the row keeps the first."""
    args = ("--sender=reporter@example.org", "--recipient=abuse+c1@abusedesk.localhost", "--recipient=abuse@x.example")
    assert _pipe(monkeypatch, build_mail(), *args) == 0
    message = InboundMessage.objects.get()
    assert (message.envelope_sender, message.envelope_recipient) == (
        "reporter@example.org",
        "abuse+c1@abusedesk.localhost",
    )


@pytest.mark.django_db
def test_pipe_takes_an_empty_sender_for_a_bounce(monkeypatch):
    assert _pipe(monkeypatch, build_mail(), "--sender=", "--recipient=abuse@abusedesk.localhost") == 0
    assert InboundMessage.objects.get().envelope_sender == ""


# --- exit codes from outside: manage.py and the MTA wrapper, in child processes ----------------


@dataclass
class ChildDatabase:
    """The test database as a child process reaches it: DATABASE_URL, and `pull()` to see what the
    child wrote (SQLite's test database lives in this process's memory, so it goes through a file)."""

    url: str
    file: Path | None

    def pull(self) -> None:
        if self.file is not None:
            with sqlite3.connect(self.file) as source:
                source.backup(connection.connection)


@pytest.fixture
def child_database(transactional_db: None, tmp_path: Path) -> Iterator[ChildDatabase]:
    params = connection.settings_dict
    if connection.vendor == "postgresql":
        user = f"{quote(params['USER'])}:{quote(params['PASSWORD'] or '')}@" if params["USER"] else ""
        host = params["HOST"] or ""
        if host.startswith("/"):
            url = f"postgres://{user}/{params['NAME']}?host={host}" + (
                f"&port={params['PORT']}" if params["PORT"] else ""
            )
        else:
            url = f"postgres://{user}{host}:{params['PORT'] or 5432}/{params['NAME']}"
        yield ChildDatabase(url, None)
        return
    path = tmp_path / "child.sqlite3"
    connection.ensure_connection()
    with sqlite3.connect(path) as target:
        connection.connection.backup(target)
    yield ChildDatabase(f"sqlite:///{path}", path)


def _env_file(tmp_path: Path, settings, database: ChildDatabase, *lines: str) -> Path:
    env_file = tmp_path / "abusedesk.env"
    env_file.write_text(
        "\n".join(
            [
                f"DATABASE_URL='{database.url}'",
                f"ABUSEDESK_VAR_DIR='{tmp_path / 'var'}'",
                f"ABUSEDESK_MEDIA_ROOT='{settings.MEDIA_ROOT}'",
                f"ABUSEDESK_PYTHON='{sys.executable}'",
                *lines,
            ]
        )
        + "\n"
    )
    return env_file


def _run_wrapper(env_file: Path | str, data: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    # An empty environment, as Postfix's pipe gives its command.
    return subprocess.run(
        ["/bin/sh", str(WRAPPER), str(env_file), *args], input=data, env={}, capture_output=True, timeout=60
    )


def test_the_wrapper_stores_the_mail_with_its_envelope_from_an_empty_environment(child_database, tmp_path, settings):
    raw = build_mail()
    result = _run_wrapper(
        _env_file(tmp_path, settings, child_database),
        raw,
        "--sender=reporter@example.org",
        "--recipient=abuse@abusedesk.localhost",
    )
    assert result.returncode == 0, result.stderr.decode()
    child_database.pull()
    message = InboundMessage.objects.get()
    assert (message.source, message.envelope_sender, message.envelope_recipient) == (
        "pipe",
        "reporter@example.org",
        "abuse@abusedesk.localhost",
    )
    assert read_blob(message.raw.name) == raw


def test_the_wrapper_passes_65_for_data_that_is_not_mail(child_database, tmp_path, settings):
    result = _run_wrapper(_env_file(tmp_path, settings, child_database), b"\x89PNG\r\n\x1a\n\x00binary")
    assert result.returncode == 65, result.stderr.decode()


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        (["ABUSEDESK_ENV=production"], "SECRET_KEY must be set in production"),
        (["DJANGO_SETTINGS_MODULE=abusedesk.no_such_settings"], "ModuleNotFoundError"),
        (["ABUSEDESK_VAR_DIR=/etc/hostname/var", "ABUSEDESK_MEDIA_ROOT=/etc/hostname/media"], "could not store"),
        (["ABUSEDESK_PYTHON=/nonexistent/python"], "/nonexistent/python is not executable"),
        (["this is not an environment file ("], "cannot load"),
    ],
    ids=["settings", "settings-module", "unwritable-store", "no-python", "broken-env-file"],
)
def test_every_failure_before_the_mail_is_stored_exits_75(child_database, tmp_path, settings, lines, reason):
    result = _run_wrapper(_env_file(tmp_path, settings, child_database, *lines), build_mail())
    assert result.returncode == 75, result.stderr.decode()
    assert reason in result.stderr.decode()
    child_database.pull()
    assert not InboundMessage.objects.exists()


def test_an_unreadable_environment_file_exits_75(tmp_path):
    result = _run_wrapper(tmp_path / "missing.env", build_mail())
    assert result.returncode == 75
    assert "cannot read" in result.stderr.decode()


@pytest.mark.parametrize(
    "command",
    [
        # No site-packages: Django cannot even be imported.
        [sys.executable, "-S", str(ROOT / "manage.py"), "ingest_mail"],
        # argparse exits 2 for an option it does not know.
        [sys.executable, str(ROOT / "manage.py"), "ingest_mail", "--no-such-option"],
    ],
    ids=["no-django", "bad-option"],
)
def test_manage_py_turns_start_up_failures_of_ingest_mail_into_75(tmp_path, command):
    env = {"ABUSEDESK_VAR_DIR": str(tmp_path), "PATH": os.environ.get("PATH", "")}
    result = subprocess.run(command, input=build_mail(), env=env, capture_output=True, timeout=60)
    assert result.returncode == 75, result.stderr.decode()
    assert "ingest_mail:" in result.stderr.decode()


def test_manage_py_leaves_other_commands_exit_status_alone(tmp_path):
    env = {"ABUSEDESK_VAR_DIR": str(tmp_path), "PATH": os.environ.get("PATH", "")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "reprocess", "--no-such-option"], env=env, capture_output=True
    )
    assert result.returncode == 2


@pytest.mark.django_db
def test_an_unescaped_from_line_in_an_mbox_does_not_split_the_message(capsys):
    mbox = ROOT / "tests" / "data" / "mail" / "cpython-test_email" / "mailbox_01.mbox"
    call_command("ingest_mail", "--mbox", str(mbox))
    assert "stored 1" in capsys.readouterr().out
    assert read_blob(InboundMessage.objects.get().raw.name).endswith(b"Hello\n\nFrom time to time\n")


@pytest.mark.django_db
def test_a_file_that_is_no_mbox_is_a_clear_error(tmp_path):
    path = tmp_path / "not.mbox"
    path.write_bytes(build_mail())
    with pytest.raises(CommandError, match="not an mbox file"):
        call_command("ingest_mail", "--mbox", str(path))
    assert not InboundMessage.objects.exists()
