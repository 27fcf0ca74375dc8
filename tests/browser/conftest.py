"""Headless Debian Chromium against a live server, with the workspace's personas and mail.

Playwright never downloads a browser here (STACK-NOTES): the tests drive /usr/bin/chromium. When it
is missing they skip locally, and fail in CI (`CI` set), where a skipped browser test would hide a
broken workspace behind a green run.
"""

from __future__ import annotations

import importlib
import io
import os
import threading
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.test import Client
from PIL import Image
from playwright.sync_api import BrowserContext, Page

from reports.models import Case, InboundMessage
from tests.mail import build_mail

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results"
PASSWORD = "browser-password-1"
# Every hostile payload sets this flag (and opens a dialog); the tests assert neither happened.
PWNED = "window.__pwned=true;alert(document.domain)"
# Before any page script: the flag, and a record of everything the CSP had to block (an escaping
# bug hidden by the CSP is still a bug).
WATCH_SCRIPT = """
window.__pwned = false;
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""

# live_server runs Django in a thread next to Playwright's event loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(
            f"{CHROMIUM} is missing, and CI must not skip the browser tests: "
            "apt-get install -y chromium (never `playwright install`).",
            pytrace=False,
        )
    pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium to run the browser tests")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    _require_chromium()
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}, "locale": "en-US"}


@pytest.fixture(scope="session", autouse=True)
def _one_request_at_a_time(live_server: Any) -> None:
    """Serialise the live server's requests. On SQLite its threads share the test's in-memory
    connection, and two htmx requests at once (a search replacing an aborted one, three panels
    refreshing after a block) fail inside sqlite3 with "bad parameter or other API misuse"."""
    server = live_server.thread.httpd
    app = server.get_app()
    lock = threading.Lock()

    def serial_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with lock:
            return app(environ, start_response)

    server.set_app(serial_app)


@pytest.fixture(autouse=True)
def _migrated_data(transactional_db: None) -> None:
    """Put back the roles and default reply templates that data migrations created.

    Django's flush after each live-server test empties them. `serialized_rollback` cannot restore
    them here: Playwright's sync API keeps an event loop running in this thread, so Django hands
    the test a context-local connection that lacks the serialized snapshot.
    """
    for module, function in (
        ("moderation.migrations.0003_roles", "create_roles"),
        ("moderation.migrations.0004_default_reply_templates", "create_templates"),
    ):
        getattr(importlib.import_module(module), function)(django_apps, None)


def _with_role(user: User, role: str) -> User:
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def moderator_password() -> str:
    return PASSWORD


@pytest.fixture
def moderator(transactional_db: None, moderator_password: str) -> User:
    user = User.objects.create_user("mona", "mona@desk.example", moderator_password, is_staff=True)
    return _with_role(user, "moderator")


@pytest.fixture
def signed_in(context: BrowserContext, live_server: Any, moderator: User) -> User:
    """The moderator's session cookie in the browser, for tests that are not about signing in."""
    client = Client()
    client.force_login(moderator)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    return moderator


@pytest.fixture
def dialogs(page: Page) -> list[str]:
    """Every alert/confirm/prompt the page opens (dismissed), and the watch script installed."""
    seen: list[str] = []

    def _dismiss(dialog: Any) -> None:
        seen.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", _dismiss)
    page.add_init_script(WATCH_SCRIPT)
    return seen


@pytest.fixture
def screenshot(page: Page, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """Save the page's final state as test-results/browser-<name>.png (gitignored)."""

    def _shoot(name: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"browser-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return _shoot


@pytest.fixture
def queue_cases(ingest: Callable[..., InboundMessage]) -> dict[str, Case]:
    """Three cases through the real intake, oldest first; two of them are about weapons, and the
    bot's case has two reporters."""
    mails = {
        "propaganda": build_mail(
            "The channel t.me/execution_news_24 posts execution videos.",
            sender="Amira K. <amira@example.org>",
            subject="Terrorist channel",
            message_id="<b-1@example.org>",
        ),
        "weapons_bot": build_mail(
            "The bot t.me/weapons_shop_bot sells weapons to anyone. Please block it.",
            sender="Lena <lena@example.de>",
            subject="Bot sells weapons",
            message_id="<b-2@example.de>",
        ),
        "weapons_group": build_mail(
            "This group t.me/weapons_market_group trades weapons openly.",
            sender="Omar <omar@example.net>",
            subject="Weapons market",
            message_id="<b-3@example.net>",
        ),
    }
    cases = {name: ingest(raw).report.case for name, raw in mails.items()}
    # A second reporter about the bot joins its open case, so "every reporter" means two.
    second = ingest(
        build_mail(
            "Same bot: t.me/weapons_shop_bot offers rifles for crypto.",
            sender="Jonas <jonas@example.net>",
            subject="Weapons bot",
            message_id="<b-4@example.net>",
        )
    )
    assert second.report.case_id == cases["weapons_bot"].pk
    return cases


def hostile_mails() -> list[bytes]:
    """A plain-text mail with script in the display name, subject, body and attachment name (and a
    real PNG, for the blur), then an HTML-only mail about the same channel."""
    plain = EmailMessage()
    plain["From"] = f'"<script>{PWNED}</script>" <hostile@example.org>'
    plain["To"] = "abuse@abusedesk.localhost"
    plain["Subject"] = f"<script>{PWNED}</script> t.me/hostile_channel"
    plain["Message-ID"] = "<hostile-1@example.org>"
    plain.set_content(
        f'Look: <script>{PWNED}</script><img src=x onerror="{PWNED}"> at https://t.me/hostile_channel "><b>bold</b>'
    )
    png = io.BytesIO()
    Image.new("RGB", (320, 200), (200, 30, 30)).save(png, format="PNG")
    plain.add_attachment(png.getvalue(), maintype="image", subtype="png", filename=f'<img src=x onerror="{PWNED}">.png')
    html = EmailMessage()
    html["From"] = "Second Reporter <second@example.net>"
    html["To"] = "abuse@abusedesk.localhost"
    html["Subject"] = "Same channel, in HTML"
    html["Message-ID"] = "<hostile-2@example.net>"
    html.set_content(
        f"<html><body><p>HTML report about t.me/hostile_channel</p>"
        f'<img src=x onerror="{PWNED}"><script>{PWNED}</script>'
        f"<p>&lt;script&gt;alert('decoded')&lt;/script&gt;</p></body></html>",
        subtype="html",
    )
    return [plain.as_bytes(), html.as_bytes()]


@pytest.fixture
def hostile_case(ingest: Callable[..., InboundMessage]) -> Case:
    first, second = (ingest(raw) for raw in hostile_mails())
    case = first.report.case
    assert second.report.case_id == case.pk, "the HTML mail should thread into the same case"
    return case


@pytest.fixture
def lead(transactional_db: None) -> User:
    user = User.objects.create_user("lena", "lena@desk.example", PASSWORD, is_staff=True)
    return _with_role(user, "lead")


@pytest.fixture
def signed_in_lead(context: BrowserContext, live_server: Any, lead: User) -> User:
    """A lead's session cookie in the browser: leads see every control and the audit log."""
    client = Client()
    client.force_login(lead)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    return lead
