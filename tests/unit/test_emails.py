"""Rendering notifications as e-mails: subjects, parts, links, escaping, header injection."""

from __future__ import annotations

import email
import json
import re
import unicodedata
from email import policy
from email.errors import HeaderParseError
from email.headerregistry import Address
from typing import Any

import pytest

from consumers.notify.emails import DAILY_SUMMARY_SUBJECT, MailSettings, one_line, render
from pipeline.settings import Settings
from tests.support.events import daily_summary, export_failure_notice, rejection_notice
from topics import SchemaError, decode
from topics.codec import encode
from topics.specs import NOTIFICATIONS

MAIL = MailSettings.from_settings(
    Settings(
        smtp_from="ERP Integrations <erp@acme.example>",
        item_url_template="https://pm.example/{company_id}/{item_type}/{item_id}",
    )
)


def sent(event: dict[str, Any], mail: MailSettings = MAIL) -> email.message.EmailMessage:
    """Render, then parse the bytes a server would receive."""
    model = decode(encode(NOTIFICATIONS.adapter.validate_python(event)), NOTIFICATIONS)
    raw = render(model, mail).as_bytes()
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def parts(message: email.message.EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    body = message.get_body(("html",))
    assert text is not None and body is not None
    return text.get_content(), body.get_content()


def test_rejection_notice_subject_recipient_reason_and_link() -> None:
    message = sent(rejection_notice(to="pat.pm@acme.example", reason="Wrong cost code"))
    assert message["Subject"] == "acme-builders: ERP Commitment Change Order Rejection Notification"
    assert message["To"] == "pat.pm@acme.example"
    assert message["From"] == "ERP Integrations <erp@acme.example>"
    assert message["Reply-To"] == "Ana Approver <ana.approver@acme.example>"
    text, body = parts(message)
    for part in (text, body):
        assert "Wrong cost code" in part
        assert "CCO-001" in part
        assert "https://pm.example/acme-builders/commitment_change_order/cco-300" in part


def test_commitment_type_is_human_readable() -> None:
    item = {"type": "commitment", "id": "sc-200", "number": "SC-200"}
    message = sent(rejection_notice(item=item))
    assert message["Subject"] == "acme-builders: ERP Commitment Rejection Notification"


def test_message_id_is_derived_from_the_event_id() -> None:
    event = rejection_notice()
    first, second = sent(event), sent(event)
    assert first["Message-ID"] == second["Message-ID"]
    assert event["event_id"] in first["Message-ID"]
    assert sent(rejection_notice())["Message-ID"] != first["Message-ID"]


def test_export_failure_subject_and_error() -> None:
    message = sent(export_failure_notice(error_message="Vendor V1001 is inactive"))
    assert message["Subject"] == "acme-builders: ERP Commitment Change Order Export Failed"
    text, body = parts(message)
    assert "Vendor V1001 is inactive" in text and "Vendor V1001 is inactive" in body


def test_daily_summary_lists_every_item() -> None:
    message = sent(daily_summary(titles=("Concrete", "Steel", "Glazing")))
    assert message["Subject"] == DAILY_SUMMARY_SUBJECT
    text, body = parts(message)
    for n, title in enumerate(("Concrete", "Steel", "Glazing")):
        assert f"SC-{n}: {title}" in text
        assert f"SC-{n}: {title}" in body
    assert "3 items" in text


def test_daily_summary_shows_project_amount_days_waiting_and_the_company_name() -> None:
    """What an approver needs to choose what to do first (#19)."""
    summary = daily_summary(titles=("Concrete",))
    summary["occurred_at"] = "2026-11-23T13:00:00Z"  # three days after the submission
    summary["payload"]["company_name"] = "Acme Builders, Inc."
    summary["payload"]["items"][0]["amount"] = "48000.50"
    text, body = parts(sent(summary))
    assert "1 item of Acme Builders, Inc. awaiting acceptance" in text
    assert "(project Riverside Medical Office), 48,000.50" in text
    assert "waiting 3 days" in text
    assert "<td>Riverside Medical Office</td>" in body and "48,000.50" in body
    assert "<td>3 days</td>" in body


def test_a_capped_daily_summary_says_how_many_more_wait() -> None:
    message = sent(daily_summary(titles=("Concrete", "Steel"), more_items=4321))
    text, body = parts(message)
    assert "4323 items of acme-builders awaiting acceptance" in text
    assert "and 4321 more" in text and "and 4321 more" in body
    assert "and 0 more" not in parts(sent(daily_summary()))[0]


def test_no_link_without_a_template() -> None:
    mail = MailSettings.from_settings(Settings(smtp_from="erp@acme.example"))
    text, body = parts(sent(rejection_notice(), mail))
    assert "http" not in text and "<a " not in body


def test_user_text_is_escaped_in_html() -> None:
    item = {
        "type": "commitment",
        "id": "sc-1",
        "number": "SC-1",
        "title": "<script>alert(1)</script>",
    }
    message = sent(rejection_notice(item=item, reason='<img src=x onerror="steal()"> & more'))
    _, body = parts(message)
    assert "<script>" not in body and "<img" not in body
    assert "&lt;script&gt;" in body
    assert "&lt;img src=x onerror=&quot;steal()&quot;&gt; &amp;" in body


@pytest.mark.parametrize(
    "injection",
    ["\r\nBcc: x@evil.test", "\nBcc: x@evil.test", "\rBcc: x@evil.test", "\x85Bcc: x@evil.test"],
)
def test_a_line_break_in_a_title_is_refused_by_the_contract(injection: str) -> None:
    item = {"type": "commitment", "id": "sc-1", "number": "SC-1", "title": f"Footings{injection}"}
    with pytest.raises(SchemaError, match=r"payload\.item\.title"):
        decode(json.dumps(rejection_notice(item=item)), NOTIFICATIONS)


@pytest.mark.parametrize("injection", ["\u2028Bcc: x@evil.test", "\u2029Bcc: x@evil.test"])
def test_a_title_cannot_add_a_header(injection: str) -> None:
    # Unicode's line and paragraph separators are not control characters: the contract takes
    # them, and some mail software breaks lines at them
    assert not [c for c in injection if unicodedata.category(c) == "Cc"]
    item = {
        "type": "commitment",
        "id": "sc-1",
        "number": f"SC-1{injection}",
        "title": f"Footings{injection}",
        "project_name": f"P{injection}",
    }
    message = sent(rejection_notice(item=item))
    assert message["Bcc"] is None
    assert all(name.lower() != "bcc" for name in message)


def test_a_name_cannot_add_a_header() -> None:
    event = rejection_notice()
    event["payload"]["rejected_by"] = {
        **event["payload"]["rejected_by"],
        "name": "Ana\u2028Bcc: x@evil.test",
    }
    message = sent(event)
    assert message["Bcc"] is None
    reply_to = message["Reply-To"].addresses
    assert [a.addr_spec for a in reply_to] == ["ana.approver@acme.example"]
    assert reply_to[0].display_name == "Ana Bcc: x@evil.test"


def test_sender_and_template_are_checked_early() -> None:
    with pytest.raises(ValueError, match="SMTP_FROM"):
        MailSettings.from_settings(Settings(smtp_from="nobody"))
    with pytest.raises(ValueError, match="ITEM_URL_TEMPLATE"):
        MailSettings.from_settings(Settings(item_url_template="https://x/{password}"))


def test_one_line() -> None:
    assert one_line("a\r\nb\u2028c\x85d") == "a b c d"


#: The e-mail pattern of the contract before #15.
OLD_EMAIL = re.compile(r"^[^@\s<>,;:\"]+@[^@\s<>,;:\"]+\.[^@\s<>,;:\"]+$")


@pytest.mark.parametrize(
    "address",
    [
        "ana)@acme.example",
        "ana[x]@acme.example",
        "ana\\x@acme.example",
        "ana..x@acme.example",
        ".ana@acme.example",
        "ana@acme..example",
        "ana@acme.example.",
        "ana\x00@acme.example",
        "ana@acme(x).example",
    ],
)
def test_an_address_the_mail_package_cannot_write_is_refused_by_the_contract(address: str) -> None:
    assert OLD_EMAIL.match(address), "the old contract let it in"
    with pytest.raises((ValueError, HeaderParseError)):
        Address("Ana", addr_spec=address)
    event = rejection_notice()
    event["payload"]["rejected_by"] = {**event["payload"]["rejected_by"], "email": address}
    with pytest.raises(SchemaError, match=r"payload\.rejected_by\.email"):
        decode(json.dumps(event), NOTIFICATIONS)


def test_an_internationalized_approver_address_can_be_replied_to() -> None:
    # `Address(addr_spec=...)` refuses a non-ASCII local part (SMTPUTF8 allows it): rendering
    # raised and the rejection notice was dead-lettered instead of sent
    event = rejection_notice(to="jos\u00e9@acme.example")
    event["payload"]["rejected_by"] = {
        **event["payload"]["rejected_by"],
        "email": "an\u00e1@acme.example",
    }
    message = sent(event)
    assert [a.addr_spec for a in message["Reply-To"].addresses] == ["an\u00e1@acme.example"]
    assert [a.addr_spec for a in message["To"].addresses] == ["jos\u00e9@acme.example"]


def console_item_route(link: str, base: str) -> dict[str, str]:
    """The path parameters of the console's item page that `link` opens (fails if none)."""
    from starlette.routing import Match, Route

    from consumers.console import pages

    assert link.startswith(base), link
    path = "/" + link.removeprefix(base).lstrip("/")
    scope = {"type": "http", "path": path, "method": "GET"}
    for route in pages.router.routes:
        if isinstance(route, Route) and route.path == "/items/{item_type}/{item_id}":
            match, child = route.matches(scope)
            assert match is Match.FULL, path
            params: dict[str, str] = child["path_params"]
            return params
    raise AssertionError("the console has no item page")


def test_items_link_to_their_console_page_at_console_public_url() -> None:
    from consumers.console.views import tab_of

    base = "https://console.acme.example/erp"
    mail = MailSettings.from_settings(
        Settings(smtp_from="erp@acme.example", console_public_url=base + "/")
    )
    for event, item_type, item_id in (
        (rejection_notice(), "commitment_change_order", "cco-300"),
        (export_failure_notice(), "commitment_change_order", "cco-300"),
        (daily_summary(titles=("Concrete",)), "commitment", "sc-0"),
    ):
        text, body = parts(sent(event, mail))
        link = f"{base}/items/{item_type}/{item_id}"
        assert link in text and f'href="{link}"' in body, text
        assert console_item_route(link, base) == {"item_type": item_type, "item_id": item_id}
        tab_of(item_type)  # a type the item page shows


def test_item_url_template_wins_over_console_public_url() -> None:
    mail = MailSettings.from_settings(
        Settings(
            smtp_from="erp@acme.example",
            console_public_url="https://console.acme.example/",
            item_url_template="https://pm.example/{company_id}/{item_type}/{item_id}",
        )
    )
    text, _ = parts(sent(rejection_notice(), mail))
    assert "https://pm.example/acme-builders/commitment_change_order/cco-300" in text
    assert "console.acme.example" not in text
