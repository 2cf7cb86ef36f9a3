"""The development mail backend: each email one readable ``.eml`` file in ``EMAIL_FILE_PATH``.

Django's file backend writes every message sent over one connection into the same file (the
outbox flush sends many at once), and writes the subject RFC 2047-encoded (``=?utf-8?q?...``)
as soon as it holds a dash or an accent. Here each email gets its own file, named after the time
and a random suffix so files sort by arrival and never collide, with the subject as plain UTF-8
text. The rest is the message as an SMTP server would receive it (multipart, text and HTML)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from pathlib import Path

from django.core.mail.backends.filebased import EmailBackend as FileBackend
from django.core.mail.message import EmailMessage
from django.utils import timezone

# The Subject header with its folded continuation lines, in a header block split on "\n".
_SUBJECT = re.compile(rb"^Subject:.*\n(?:[ \t].*\n)*", re.MULTILINE)


def readable_bytes(message: EmailMessage) -> bytes:
    """``message`` as an ``.eml`` file holds it, its subject unencoded (one line, UTF-8)."""
    raw = message.message().as_bytes()  # Django's messages separate lines with "\n"
    head, separator, body = raw.partition(b"\n\n")
    subject = b"Subject: " + " ".join(str(message.subject).split()).encode() + b"\n"
    head = _SUBJECT.sub(lambda _match: subject, head + b"\n", count=1).rstrip(b"\n")
    return head + separator + body


class EmailBackend(FileBackend):
    """One file per email (see the module docstring); otherwise Django's file backend."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        folder = Path(self.file_path)
        with self._lock:
            for message in email_messages:
                if not message.recipients():
                    continue
                name = f"{timezone.now():%Y%m%d-%H%M%S-%f}-{secrets.token_hex(4)}.eml"
                (folder / name).write_bytes(readable_bytes(message))
                sent += 1
        return sent
