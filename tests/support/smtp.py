"""A real SMTP server (aiosmtpd) on loopback that answers each command as a test scripts it."""

from __future__ import annotations

import logging
import threading
from typing import Any

from aiosmtpd.controller import Controller

from consumers.dev.mailsink import ReceivedMail
from consumers.dev.services import free_port
from consumers.notify.smtp import SmtpTarget

OK = "250 OK"


class ScriptedSmtp:
    """An aiosmtpd server answering MAIL FROM, RCPT TO and DATA with what the test sets.

    `rcpt` answers every recipient not in `per_recipient` (address → answer). It keeps every
    RCPT TO address asked (`rcpts`, in order) and every message it accepted (`messages()`).
    `start()` and `stop()` may alternate: it listens on the same port each time. `options` go
    to aiosmtpd's SMTP (e.g. `enable_SMTPUTF8=False`, `data_size_limit=...`).
    """

    def __init__(self, **options: Any) -> None:
        self.mail, self.rcpt, self.data = OK, OK, OK
        self.per_recipient: dict[str, str] = {}
        self.port = free_port()
        self._options = options
        self._rcpts: list[str] = []
        self._received: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        """The `SMTP_URL` that reaches it."""
        return f"smtp://127.0.0.1:{self.port}"

    def target(self, timeout_s: float = 5.0) -> SmtpTarget:
        """An `SmtpTarget` that reaches it."""
        return SmtpTarget("127.0.0.1", self.port, timeout_s=timeout_s)

    def start(self) -> ScriptedSmtp:
        """Listen (again, if stopped; if listening, nothing changes); returns self."""
        if self._controller is not None:
            return self
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # it logs every address
        controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, **self._options
        )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        """Stop listening: connections are refused until the next `start()`."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def rcpts(self, address: str | None = None) -> list[str]:
        """Every RCPT TO address asked so far (only `address`, when given)."""
        with self._lock:
            return [a for a in self._rcpts if address is None or a == address]

    def messages(self, recipient: str | None = None) -> list[ReceivedMail]:
        """Every message accepted so far (only those to `recipient`, when given)."""
        with self._lock:
            return [m for m in self._received if recipient is None or recipient in m.rcpt_tos]

    def answer_rcpt(self, address: str) -> str:
        """Note that `address` was asked for, and return the answer scripted for it."""
        with self._lock:
            self._rcpts.append(address)
        return self.per_recipient.get(address, self.rcpt)

    def keep(self, mail: ReceivedMail) -> None:
        """Remember an accepted message."""
        with self._lock:
            self._received.append(mail)


class _Handler:
    def __init__(self, server: ScriptedSmtp) -> None:
        self.server = server

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        answer = self.server.mail
        if answer.startswith("250"):
            envelope.mail_from = address
            envelope.mail_options.extend(options)
        return answer

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        answer = self.server.answer_rcpt(address)
        if answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return answer

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = self.server.data
        if answer.startswith("250"):
            content = envelope.original_content or envelope.content
            mail = ReceivedMail(str(envelope.mail_from), tuple(envelope.rcpt_tos), bytes(content))
            self.server.keep(mail)
        return answer
