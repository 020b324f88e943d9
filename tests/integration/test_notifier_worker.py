"""`erp-pipeline run notifier` as a process, and the dev stack's mail sink and mail-drop folder."""

from __future__ import annotations

import email
import signal
import uuid
from email import policy
from pathlib import Path

from pydantic import SecretStr

from consumers.cli.run import describe_stack
from consumers.dev.mailsink import MailSink
from consumers.dev.stack import running_stack
from consumers.notify.emails import MailSettings, render
from consumers.notify.smtp import SmtpTarget, send_sync
from pipeline.kafka import make_producer
from pipeline.settings import Settings
from tests.support.events import export_failure_notice
from tests.support.notifier import one_mail_to, publish_notification
from tests.support.processes import start_worker
from tests.support.waiting import eventually
from topics.specs import NOTIFICATIONS


async def test_the_notifier_worker_sends_and_stops_on_sigterm(
    settings: Settings, worker_env: dict[str, str]
) -> None:
    sink = MailSink().start()
    env = {
        **worker_env,
        "SMTP_URL": sink.url,
        "SMTP_FROM": "erp@acme.example",
        "KAFKA_SESSION_TIMEOUT_MS": "6000",
    }
    process = start_worker("notifier", env)
    producer = make_producer(settings)
    await producer.start()
    try:
        approver = f"approver-{uuid.uuid4().hex[:8]}@acme.example"
        await publish_notification(producer, settings, export_failure_notice(to=approver))
        message = await one_mail_to(sink, approver, timeout=60)
        assert message["Subject"] == "acme-builders: ERP Commitment Change Order Export Failed"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        await producer.stop()
        if process.poll() is None:
            process.kill()
            process.wait()
        sink.stop()


def test_dev_stack_starts_a_sink_that_fills_the_maildrop(
    settings: Settings, tmp_path: Path
) -> None:
    base = settings.model_copy(update={"smtp_url": None, "data_dir": str(tmp_path)})
    with running_stack(base) as stack:
        assert stack.maildrop == tmp_path / "maildrop"
        assert stack.settings.smtp_url is not None
        assert stack.env()["SMTP_URL"] == stack.settings.smtp_url.get_secret_value()
        assert any(str(stack.maildrop.resolve()) in line for line in describe_stack(stack))
        event = NOTIFICATIONS.adapter.validate_python(export_failure_notice())
        mail = MailSettings.from_settings(stack.settings)
        send_sync(
            SmtpTarget.from_settings(stack.settings),
            render(event, mail),
            mail.sender.addr_spec,
            event.payload.to,
        )
        maildrop = stack.maildrop
        eventually(
            lambda: list(maildrop.glob("*.eml")),
            timeout=10,
            interval=0.05,
            message="the e-mail reached the maildrop",
        )
        [dropped] = list(maildrop.glob("*.eml"))
    parsed = email.message_from_bytes(dropped.read_bytes(), policy=policy.default)
    assert parsed["To"] == event.payload.to
    assert parsed["Delivered-To"] == event.payload.to


def test_a_configured_smtp_url_is_used_instead_of_the_sink(
    settings: Settings, tmp_path: Path
) -> None:
    configured = settings.model_copy(
        update={
            "smtp_url": SecretStr("smtp://mailer:hunter2@mail.example:587?starttls=1"),
            "data_dir": str(tmp_path),
        }
    )
    with running_stack(configured) as stack:
        assert stack.maildrop is None
        lines = describe_stack(stack)
        assert "Mail       smtp+starttls://mailer@mail.example:587" in lines
        assert "hunter2" not in "\n".join(lines)
