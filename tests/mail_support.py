"""The mailbox behind the ``smtp`` fixture (tests/conftest.py): a real SMTP server (aiosmtpd on
127.0.0.1, a free port) for any test that must see an email as a mail server receives it."""

from __future__ import annotations

import email as email_lib
import socket
from email import policy
from email.message import EmailMessage
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mailbox:
    """An SMTP handler that answers "451 try later" to the first ``refuse`` messages."""

    def __init__(self) -> None:
        self.refuse = 0
        self.refused = 0
        self.received: list[email_lib.message.Message] = []
        self.raw: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse > 0:
            self.refuse -= 1
            self.refused += 1
            return "451 4.3.0 Mailbox busy, try later"
        raw = envelope.original_content or envelope.content
        self.raw.append(raw)
        self.received.append(email_lib.message_from_bytes(raw))
        return "250 Message accepted"

    def message_ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.received]

    def recipients(self) -> list[str]:
        return [str(m["To"]) for m in self.received]

    def parsed(self) -> list[EmailMessage]:
        """The messages as received, parsed with the modern email API (decoded headers,
        ``get_body``), in arrival order."""
        return [email_lib.message_from_bytes(raw, policy=policy.default) for raw in self.raw]

    def to(self, address: str) -> list[EmailMessage]:
        """The messages received for ``address``."""
        return [message for message in self.parsed() if message["To"] == address]
