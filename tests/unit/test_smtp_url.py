"""SMTP_URL parsing: schemes, ports, TLS modes, credentials kept secret."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from consumers.notify.smtp import SmtpTarget
from pipeline.settings import ConfigurationError, Settings


def test_plain_smtp_with_credentials() -> None:
    target = SmtpTarget.parse("smtp://mailer:s%40cret@mail.example:2525")
    assert (target.host, target.port, target.security) == ("mail.example", 2525, "plain")
    assert target.username == "mailer"
    assert target.password is not None and target.password.get_secret_value() == "s@cret"
    assert "s@cret" not in repr(target) and "s@cret" not in target.describe()
    assert target.describe() == "smtp://mailer@mail.example:2525"


@pytest.mark.parametrize(
    ("url", "security", "port"),
    [
        ("smtp://mail.example", "plain", 25),
        ("smtp://mail.example?starttls=1", "starttls", 25),
        ("smtp+starttls://mail.example", "starttls", 587),
        ("smtps://mail.example", "tls", 465),
    ],
)
def test_schemes(url: str, security: str, port: int) -> None:
    target = SmtpTarget.parse(url)
    assert (target.security, target.port) == (security, port)


def test_password_from_its_own_variable() -> None:
    settings = Settings(
        smtp_url=SecretStr("smtp://mailer@mail.example"), smtp_password=SecretStr("hunter2")
    )
    target = SmtpTarget.from_settings(settings)
    assert target.password is not None and target.password.get_secret_value() == "hunter2"
    assert "hunter2" not in str(settings.masked())


@pytest.mark.parametrize("url", ["http://mail.example", "smtp://", "mail.example:25"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="SMTP_URL"):
        SmtpTarget.parse(url)


def test_missing_url_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="SMTP_URL is not set"):
        SmtpTarget.from_settings(Settings(smtp_url=None))
