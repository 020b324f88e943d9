"""A local SMTP sink (aiosmtpd) that drops each received e-mail into a folder as a `.eml` file."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the sink received it: the envelope and the bytes."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes


#: Recipients at these domains are refused with a 550, as a real server refuses an unknown
#: domain. `.invalid` never exists (RFC 2606), but the contract refuses special-use names, so
#: `undeliverable.example` (an ordinary name to the contract) is how tests and demos try one.
REFUSED_DOMAINS = (".invalid", "@undeliverable.example")


class _Handler:
    """aiosmtpd handler: refuses recipients at `REFUSED_DOMAINS`, keeps and drops the rest."""

    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower().rstrip(">").endswith(REFUSED_DOMAINS):
            return "550 5.1.2 no such domain"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        self.sink.keep(
            ReceivedMail(str(envelope.mail_from), tuple(envelope.rcpt_tos), bytes(content))
        )
        return "250 Message accepted"


class MailSink:
    """An SMTP server on loopback; `start()` runs it in its own thread, `stop()` ends it."""

    def __init__(
        self, maildrop: Path | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.maildrop = maildrop
        self.host = host
        self.port = port
        self.received: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._controller: Any = None

    @property
    def url(self) -> str:
        """The `SMTP_URL` that reaches this sink."""
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> MailSink:
        """Listen (on a free port when `port` is 0) and return self."""
        from aiosmtpd.controller import Controller

        if self.port == 0:
            from consumers.dev.services import free_port

            self.port = free_port()
        if self.maildrop is not None:
            self.maildrop.mkdir(parents=True, exist_ok=True)
        # aiosmtpd logs every SMTP command (addresses included) at INFO; ours says enough.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening (the port may be listened on again by a new `start()`)."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def keep(self, mail: ReceivedMail) -> None:
        """Remember a message and, with a mail-drop folder, write it there atomically."""
        with self._lock:
            self.received.append(mail)
        if self.maildrop is None:
            return
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        name = f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        delivered = "".join(f"Delivered-To: {rcpt}\r\n" for rcpt in mail.rcpt_tos).encode()
        partial = self.maildrop / f".{name}.part"
        partial.write_bytes(delivered + mail.content)
        partial.rename(self.maildrop / name)
        log.info("mail for %d recipient(s) dropped in %s", len(mail.rcpt_tos), name)

    def messages(self) -> list[ReceivedMail]:
        """A copy of what was received so far."""
        with self._lock:
            return list(self.received)


def run(settings: Settings) -> None:
    """Worker entry point (`erp-pipeline run mailsink`): a sink on `MAILSINK_PORT` until SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    maildrop = Path(settings.data_dir) / "maildrop"
    sink = MailSink(maildrop, port=settings.mailsink_port).start()
    log.info("mail sink on %s, messages in %s", sink.url, maildrop)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sink.stop()
