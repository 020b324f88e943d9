"""Notification events rendered as e-mails (plain text and HTML); pure, no I/O."""

from __future__ import annotations

import datetime as dt
import html
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import quote

from pipeline.settings import Settings
from topics.events import DailySummary, ExportFailureNotice, RejectionNotice
from topics.fields import mailbox
from topics.payloads import ItemType, NoticeItem

Notification = RejectionNotice | DailySummary | ExportFailureNotice

DAILY_SUMMARY_SUBJECT = "ERP Integrations Daily Summary"

TYPE_NAMES: dict[ItemType, str] = {
    ItemType.PROJECT: "Project",
    ItemType.COMMITMENT: "Commitment",
    ItemType.COMMITMENT_CHANGE_ORDER: "Commitment Change Order",
    ItemType.PRIME_CONTRACT_CHANGE_ORDER: "Prime Contract Change Order",
}

# Every character that some mail software treats as a line break.
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")


def one_line(text: str) -> str:
    """`text` with every line break replaced by a space: safe inside a header."""
    return _LINE_BREAKS.sub(" ", text).strip()


@dataclass(frozen=True)
class MailSettings:
    """What rendering needs from the configuration: the sender and the item link format."""

    sender: Address
    item_url_template: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MailSettings:
        """Parse `SMTP_FROM` and check `ITEM_URL_TEMPLATE`, failing early on either; without
        `ITEM_URL_TEMPLATE`, items link to their page at `CONSOLE_PUBLIC_URL` when it is set."""
        name, addr = parseaddr(one_line(settings.smtp_from))
        if "@" not in addr:
            raise ValueError(f"SMTP_FROM {settings.smtp_from!r} has no e-mail address")
        username, _, domain = addr.rpartition("@")
        template = settings.item_url_template or console_item_url_template(
            settings.console_public_url
        )
        mail = cls(Address(one_line(name), username, domain), template)
        if mail.item_url_template:
            try:
                mail.item_url_template.format(company_id="c", item_type="t", item_id="i")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    "ITEM_URL_TEMPLATE may use only {company_id}, {item_type} and {item_id}"
                ) from exc
        return mail

    def item_url(self, company_id: str, item: NoticeItem) -> str | None:
        """The link to an item, when a template is configured."""
        if not self.item_url_template:
            return None
        return self.item_url_template.format(
            company_id=quote(company_id, safe=""),
            item_type=quote(item.type.value, safe=""),
            item_id=quote(item.id, safe=""),
        )


def console_item_url_template(public_url: str | None) -> str | None:
    """The item link format of the console at `public_url` (its item page's route,
    `/items/{item_type}/{item_id}`; the company is the signed-in person's); None if unset."""
    if not public_url or not public_url.strip():
        return None
    base = public_url.strip().rstrip("/").replace("{", "{{").replace("}", "}}")
    return base + "/items/{item_type}/{item_id}"


def message_id(event_id: uuid.UUID, domain: str) -> str:
    """The Message-ID of a notification's e-mail: the same event always gets the same id."""
    return f"<{event_id}.notification@{domain}>"


def item_label(item: NoticeItem) -> str:
    """`Commitment Change Order CCO-001: Added footing depth` (the parts that are known)."""
    label = TYPE_NAMES[item.type]
    if item.number:
        label += f" {item.number}"
    if item.title:
        label += f": {item.title}"
    return one_line(label)


def _person(name: str | None, email: str) -> str:
    return f"{one_line(name)} <{email}>" if name and one_line(name) else email


def _link_html(url: str | None, text: str) -> str:
    if url is None:
        return html.escape(text)
    return f'<a href="{html.escape(url, quote=True)}">{html.escape(text)}</a>'


def _paragraphs_html(text: str) -> str:
    return "<br>".join(html.escape(line) for line in text.splitlines())


def _rejection(event: RejectionNotice, mail: MailSettings) -> tuple[str, str, str]:
    p = event.payload
    url = mail.item_url(event.company_id, p.item)
    by = _person(p.rejected_by.name, p.rejected_by.email)
    project = f" on project {one_line(p.item.project_name)}" if p.item.project_name else ""
    subject = f"{event.company_id}: ERP {TYPE_NAMES[p.item.type]} Rejection Notification"
    text = (
        f"{item_label(p.item)}{project} was rejected by {by} and was not sent to the ERP.\n\n"
        f"Reason:\n{p.reason}\n\n"
        "The item is editable again; correct it and send it to the ERP once more.\n"
        + (f"\nOpen the item: {url}\n" if url else "")
    )
    body = (
        f"<p>{_link_html(url, item_label(p.item))}{html.escape(project)} was rejected by "
        f"{html.escape(by)} and was not sent to the ERP.</p>"
        f"<p><strong>Reason:</strong><br>{_paragraphs_html(p.reason)}</p>"
        "<p>The item is editable again; correct it and send it to the ERP once more.</p>"
    )
    return subject, text, body


def _export_failure(event: ExportFailureNotice, mail: MailSettings) -> tuple[str, str, str]:
    p = event.payload
    url = mail.item_url(event.company_id, p.item)
    subject = f"{event.company_id}: ERP {TYPE_NAMES[p.item.type]} Export Failed"
    text = (
        f"{item_label(p.item)} could not be exported to the ERP and is now in Failed to Export.\n\n"
        f"The ERP said:\n{p.error_message}\n\n"
        "Reject it so it can be corrected and re-sent, or retry the export.\n"
        + (f"\nOpen the item: {url}\n" if url else "")
    )
    body = (
        f"<p>{_link_html(url, item_label(p.item))} could not be exported to the ERP and is now "
        "in <strong>Failed to Export</strong>.</p>"
        f"<p><strong>The ERP said:</strong><br>{_paragraphs_html(p.error_message)}</p>"
        "<p>Reject it so it can be corrected and re-sent, or retry the export.</p>"
    )
    return subject, text, body


def _days_waiting(event: DailySummary, submitted_at: dt.datetime) -> str:
    """Whole days between the item's submission and the summary: "today", "1 day", "3 days"."""
    days = max(0, (event.occurred_at - submitted_at).days)
    return "today" if days == 0 else f"{days} day{'s' if days != 1 else ''}"


def _amount(amount: str | None) -> str:
    """`48,000.00`; blank when the item has none."""
    return f"{Decimal(amount):,.2f}" if amount is not None else ""


def _summary(event: DailySummary, mail: MailSettings) -> tuple[str, str, str]:
    p = event.payload
    lines = sorted(
        p.items, key=lambda line: (list(ItemType).index(line.item.type), line.submitted_at)
    )
    total = len(lines) + p.more_items
    count = f"{total} item{'s' if total != 1 else ''}"
    company = one_line(p.company_name or event.company_id)
    intro = f"{count} of {company} awaiting acceptance in ERP Integrations on {p.date}."
    # a summary lists the items waiting longest, as many as fit in one event; the rest count
    more = f"… and {p.more_items} more not listed here." if p.more_items else ""
    text_rows, html_rows = [], []
    for line in lines:
        url = mail.item_url(event.company_id, line.item)
        label = item_label(line.item.model_copy(update={"title": line.title}))
        project = one_line(line.item.project_name or "")
        sent_by = _person(line.sent_by.name, line.sent_by.email)
        sent_at = line.submitted_at.strftime("%Y-%m-%d %H:%M %Z").strip()
        amount, waiting = _amount(line.amount), _days_waiting(event, line.submitted_at)
        text_rows.append(
            f"- {label}"
            + (f" (project {project})" if project else "")
            + (f", {amount}" if amount else "")
            + f"\n  sent by {sent_by} at {sent_at}, waiting {waiting}"
            + (f"\n  {url}" if url else "")
        )
        html_rows.append(
            f"<tr><td>{_link_html(url, label)}</td><td>{html.escape(project)}</td>"
            f'<td style="text-align: right">{html.escape(amount)}</td>'
            f"<td>{html.escape(sent_by)}</td><td>{html.escape(sent_at)}</td>"
            f"<td>{html.escape(waiting)}</td></tr>"
        )
    text = f"{intro}\n\n" + "\n".join(text_rows) + "\n" + (f"\n{more}\n" if more else "")
    body = (
        f"<p>{html.escape(intro)}</p>"
        '<table border="1" cellpadding="4" cellspacing="0">'
        "<tr><th>Item</th><th>Project</th><th>Amount</th><th>Sent by</th><th>Sent at</th>"
        "<th>Waiting</th></tr>"
        + "".join(html_rows)
        + "</table>"
        + (f"<p>{html.escape(more)}</p>" if more else "")
    )
    return DAILY_SUMMARY_SUBJECT, text, body


def render(event: Notification, mail: MailSettings) -> EmailMessage:
    """The e-mail for one notification event, ready to send to `event.payload.to`.

    Headers are built by a policy that refuses CR/LF in values, and every user-supplied
    text put in a header is reduced to one line first, so no text can add a header.
    """
    if isinstance(event, RejectionNotice):
        subject, text, body = _rejection(event, mail)
    elif isinstance(event, ExportFailureNotice):
        subject, text, body = _export_failure(event, mail)
    else:
        subject, text, body = _summary(event, mail)
    message = EmailMessage(policy=policy.SMTP)
    message["Subject"] = one_line(subject)
    message["From"] = mail.sender
    # built from its parts: `Address(addr_spec=...)` refuses an internationalized local part
    message["To"] = mailbox(event.payload.to)
    if isinstance(event, RejectionNotice):
        who = event.payload.rejected_by
        message["Reply-To"] = mailbox(who.email, one_line(who.name or ""))
    message["Date"] = format_datetime(event.occurred_at)
    message["Message-ID"] = message_id(event.event_id, mail.sender.domain)
    message["X-ERP-Notification"] = f"{event.event_type} {event.event_id}"
    message.set_content(text)
    message.add_alternative(
        f'<!DOCTYPE html><html><body style="font-family: sans-serif">{body}</body></html>\n',
        subtype="html",
    )
    return message
