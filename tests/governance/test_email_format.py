"""What an email looks like when it arrives: a real multipart/alternative message (a plain-text
part a person can read — no HTML tags, no entities — and an HTML part that stays escaped), its
subject text that decodes to what was written, one ``.eml`` file per email in development with
the subject readable, and links that point where ``make run ADDR=...`` serves."""

from __future__ import annotations

import email as email_lib
import re
from email import policy
from pathlib import Path
from typing import Any

import pytest
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction

from governance import tasks
from governance.management.commands import runportal
from governance.models import OutboundEmail, User
from governance.services import email_enqueue
from tests.governance.test_settings import _settings_in
from tests.mail_support import Mailbox

pytestmark = pytest.mark.django_db

NAME = "Workspace & Microsoft 365 <admin> “quoted”"
SUBJECT = f"Approved — {NAME}: access granted until 29 Dec 2026"
ENTITY = re.compile(r"&(?:[a-z]+|#x?[0-9a-f]+);", re.IGNORECASE)


def _queue(user: User, key: str, subject: str = SUBJECT) -> OutboundEmail:
    with transaction.atomic():
        queued = email_enqueue(
            key=key,
            recipient=user,
            subject=subject,
            template="governance_notice",
            context={"message": f"{NAME} was approved.", "path": "/inventory/"},
        )
    assert queued is not None
    return queued


def test_an_email_arrives_as_multipart_alternative_with_a_plain_readable_text_part(
    smtp: tuple[Mailbox, int], owner: User
) -> None:
    mailbox, _port = smtp
    _queue(owner, "format-1")
    assert tasks.outbox_flush() == 1
    [message] = mailbox.parsed()
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    text, html = (part.get_content() for part in parts)
    assert f"{NAME} was approved." in text
    assert not ENTITY.search(text), text
    assert not re.search(r"</?[a-z]+[ >]", text.replace("<admin>", "")), "no HTML tag in the text part"
    assert "Workspace &amp; Microsoft 365 &lt;admin&gt;" in html, "the HTML part stays escaped"
    assert message["Subject"] == SUBJECT


def test_text_templates_render_without_html_escaping_and_html_templates_with_it(owner: User) -> None:
    queued = _queue(owner, "format-3")
    assert f"{NAME} was approved." in queued.body_text
    assert "&amp;" not in queued.body_text and "&lt;" not in queued.body_text
    assert "Workspace &amp; Microsoft 365 &lt;admin&gt; “quoted” was approved." in queued.body_html


def _message(to: str, subject: str) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(subject=subject, body=f"Hello {to}", to=[to])
    message.attach_alternative(f"<p>Hello {to}</p>", "text/html")
    return message


def test_the_development_mail_backend_writes_one_readable_file_per_email(tmp_path: Path) -> None:
    """What ``EMAIL_URL=filemail://...`` (the default) configures: two emails sent over one
    connection (as the outbox flush sends them) are two files, each one parseable message
    whose subject line reads as written."""
    backend = _settings_in({"EMAIL_URL": f"filemail://{tmp_path / 'ignored'}"}, "EMAIL_BACKEND")["EMAIL_BACKEND"]
    connection = get_connection(backend, file_path=str(tmp_path / "mail"))
    sent = connection.send_messages([_message("rita@example.com", SUBJECT), _message("raj@example.com", "Plain")])
    assert sent == 2
    files = sorted((tmp_path / "mail").iterdir())
    assert len(files) == 2 and all(path.suffix == ".eml" for path in files)
    by_recipient: dict[str, Any] = {}
    for path in files:
        raw = path.read_bytes()
        assert raw.count(b"\nSubject: ") + raw.startswith(b"Subject: ") == 1, "one message per file"
        message = email_lib.message_from_bytes(raw, policy=policy.default)
        by_recipient[message["To"]] = (message, raw)
    message, raw = by_recipient["rita@example.com"]
    assert f"Subject: {SUBJECT}\n".encode() in raw and b"=?utf-8?" not in raw.split(b"\n\n")[0]
    assert message["Subject"] == SUBJECT
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert by_recipient["raj@example.com"][0]["Subject"] == "Plain"


def test_emails_the_outbox_flush_sends_in_one_pass_land_in_separate_files(
    settings: Any, tmp_path: Path, owner: User, reviewer: User
) -> None:
    settings.EMAIL_BACKEND = "governance.mail.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    _queue(owner, "file-1")
    _queue(reviewer, "file-2", subject="Waiting for your review: Registration for R&D bot")
    assert tasks.outbox_flush() == 2
    subjects = sorted(
        str(email_lib.message_from_bytes(path.read_bytes(), policy=policy.default)["Subject"])
        for path in tmp_path.iterdir()
    )
    assert subjects == [SUBJECT, "Waiting for your review: Registration for R&D bot"]


# --- Links follow the address the portal serves on ------------------------------------------------


class _Child:
    """A child process that has already exited (the command then stops at once)."""

    returncode = 0

    def __init__(self, cmd: list[str], **kwargs: Any) -> None:
        self.cmd, self.kwargs = cmd, kwargs

    def poll(self) -> int:
        return 0

    def wait(self, timeout: float | None = None) -> int:
        return 0


def _started_children(monkeypatch: pytest.MonkeyPatch, addr: str) -> list[_Child]:
    started: list[_Child] = []

    def popen(cmd: list[str], **kwargs: Any) -> _Child:
        started.append(_Child(cmd, **kwargs))
        return started[-1]

    with monkeypatch.context() as patch:
        patch.setattr(runportal.subprocess, "Popen", popen)
        # The command installs Ctrl-C handlers; keep pytest's own.
        patch.setattr(runportal.signal, "signal", lambda *args: None)
        runportal.Command().run_from_argv(["manage.py", "runportal", "--addr", addr])
    return started


def test_runportal_gives_the_web_server_and_the_worker_its_address_as_site_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SITE_URL", raising=False)
    children = _started_children(monkeypatch, "0.0.0.0:8080")
    assert [child.cmd[2] for child in children] == ["runserver", "qcluster"]
    assert {child.kwargs["env"]["SITE_URL"] for child in children} == {"http://0.0.0.0:8080"}
    values = _settings_in({"SITE_URL": children[0].kwargs["env"]["SITE_URL"]}, "SITE_URL")
    assert values["SITE_URL"] == "http://0.0.0.0:8080"


def test_a_site_url_set_in_the_environment_wins_over_the_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITE_URL", "https://portal.example.com")
    children = _started_children(monkeypatch, "127.0.0.1:9000")
    assert {child.kwargs["env"]["SITE_URL"] for child in children} == {"https://portal.example.com"}


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("8001", "http://127.0.0.1:8001"),
        ("localhost:8002", "http://localhost:8002"),
        ("[::1]:8003", "http://[::1]:8003"),
    ],
)
def test_the_site_url_follows_every_form_of_address_runserver_takes(addr: str, expected: str) -> None:
    assert runportal.site_url_for(addr) == expected
