"""Constrained field types shared by the event models (the contract's field-level rules).

Every rule is here, on the type, so that the models, the generated JSON Schemas, `publish`
and the workers refuse the same values. What a pattern can say is a pattern (the JSON Schemas
carry it); what it cannot (an e-mail address as a mail library reads it, a timestamp's instant)
is a validator, and the JSON Schema carries a pattern that is a necessary condition of it.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import Decimal
from email.errors import HeaderParseError
from email.headerregistry import Address
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

# --- text ------------------------------------------------------------------------------------
# Unicode's control characters (category Cc: C0 with NUL, DEL, C1) are refused in every string of
# the contract except where a type below says so. A lone surrogate cannot be encoded as UTF-8:
# every string with one of these patterns refuses it too (the pattern cannot say so; the models
# check it). `\xNN` is read the same by Python, Rust (pydantic) and ECMA-262 (JSON Schema).

#: One line: no control character at all.
SINGLE_LINE = r"^[^\x00-\x1f\x7f-\x9f]*$"
#: Free text over several lines: tab, line feed and carriage return are the only controls.
MULTI_LINE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
#: An identifier: no whitespace, no `:` (the key separator), no control character. U+FEFF is
#: named because ECMA-262's `\s` holds it and Rust's does not: the model and the schema agree.
IDENTIFIER = r"^[^\s:\x00-\x1f\x7f-\x9f\ufeff]+$"

_REFUSED_IN_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_REFUSED_IN_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str, *, multiline: bool = True) -> str:
    """`text` with each character the contract's text types refuse replaced by U+FFFD.

    For text the pipeline writes from what it did not choose (an ERP's error, a refusal
    reason quoting the input): a control character, or a lone surrogate, which no UTF-8 can carry.
    """
    pattern = _REFUSED_IN_LINES if multiline else _REFUSED_IN_ONE_LINE
    return pattern.sub("\ufffd", text)


#: Tenant id: 1-64 chars of `[A-Za-z0-9_.-]`; it is part of every key.
CompanyId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]

#: An identifier from upstream (item, user): 1-128 characters, see `IDENTIFIER`.
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=IDENTIFIER)]

#: Short free text from upstream on one line (titles, names, numbers, codes).
Text = Annotated[str, StringConstraints(max_length=2000, pattern=SINGLE_LINE)]

#: Free text that may span lines (descriptions, addresses, reasons, details).
MultilineText = Annotated[str, StringConstraints(max_length=2000, pattern=MULTI_LINE)]

#: A code or reference given to or by the ERP: 1-64 characters on one line.
Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=SINGLE_LINE)]

#: An id or code the pipeline or the ERP makes (export ids, error codes, quoted event ids).
ShortId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=SINGLE_LINE)]
#: The ERP's reference of an exported item.
ErpReference = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=SINGLE_LINE)]
#: A correlation id (optional on input, copied to everything derived).
CorrelationId = Annotated[str, StringConstraints(max_length=256, pattern=SINGLE_LINE)]
#: An error or status text, as long as an ERP's answer can be (multi-line).
LongText = Annotated[str, StringConstraints(max_length=8000, pattern=MULTI_LINE)]


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


#: A rejection reason: required, non-blank, at most 2000 characters, may span lines.
Reason = Annotated[MultilineText, AfterValidator(_non_blank)]

# --- e-mail ----------------------------------------------------------------------------------

#: The pipeline's own actor. `.invalid` is a special-use name the rule below refuses, but events
#: the pipeline published before that rule carry this address, and it is never mailed.
SYSTEM_EMAIL = "erp-pipeline@system.invalid"
#: RFC 5321's limit on a forward path, in octets (UTF-8).
MAX_EMAIL_OCTETS = 254
#: RFC 5321's limit on a local part (before the `@`), in octets (UTF-8).
MAX_LOCAL_PART_OCTETS = 64
#: What an address may hold, as a pattern (a necessary condition of `Email`: the JSON Schema).
EMAIL_PATTERN = (
    r'^[^@\s<>,;:"()\[\]\\\x00-\x1f\x7f-\x9f]+@[^@\s<>,;:"()\[\]\\\x00-\x1f\x7f-\x9f]+'
    r'\.[^@\s<>,;:"()\[\]\\\x00-\x1f\x7f-\x9f]+$'
)


def mailbox(address: str, display_name: str = "") -> Address:
    """`address` as the e-mail package's `Address`, split at its last `@`.

    `Address(addr_spec=...)` refuses an internationalized local part (`josé@...`), which SMTPUTF8
    allows; built from its parts it is written as it is. Every `Email` passes through this.
    """
    username, _, domain = address.rpartition("@")
    return Address(display_name, username, domain)


@functools.lru_cache(maxsize=4096)
def email_problem(address: str) -> str | None:
    """Why `address` is not an e-mail address of the contract, or None when it is.

    The address, and its lowercase form (the exporter addresses failure notices to it), must
    each be valid for the email-validator library (syntax only, no DNS: no quoted local part,
    no IP literal, no display name, a domain with a dot and no special-use name), at most 254
    UTF-8 octets as given and once normalized, with at most 64 octets before the `@`, and
    written as it is by the e-mail package.
    """
    if address == SYSTEM_EMAIL:
        return None
    forms = [(address, "")]
    if address.lower() != address:
        forms.append((address.lower(), " once lowercased"))
    for form, when in forms:
        try:
            validate_email(form, check_deliverability=False)
        except EmailNotValidError as exc:
            return f"not a valid e-mail address{when}: {exc}"
        local_octets = len(form.rpartition("@")[0].encode("utf-8", "surrogatepass"))
        if local_octets > MAX_LOCAL_PART_OCTETS:
            # the library counts characters, and only in its strict mode
            return (
                f"not a valid e-mail address{when}: {local_octets} UTF-8 octets before the @, "
                f"over RFC 5321's {MAX_LOCAL_PART_OCTETS}"
            )
        try:
            written = mailbox(form).addr_spec
            if form.isascii():
                Address(addr_spec=written)  # and the e-mail package reads back what it wrote
        except (ValueError, HeaderParseError) as exc:  # header defects are ValueErrors
            return f"not an address the e-mail package can write{when}: {exc}"
        if written != form:
            return f"the e-mail package would rewrite the address{when} as {written!r}"
    return None


def _check_email(value: str) -> str:
    problem = email_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


#: An e-mail address (see `email_problem`); stored as given, never rewritten.
Email = Annotated[
    str,
    # characters never outnumber octets: a cheap first bound, before the library counts octets
    StringConstraints(max_length=MAX_EMAIL_OCTETS, pattern=EMAIL_PATTERN),
    AfterValidator(_check_email),
    Field(
        description="An e-mail address as the email-validator library accepts it (no DNS "
        "check): no quoted local part, no IP literal, a domain with a dot and no special-use "
        "name; at most 254 UTF-8 octets as given, normalized and lowercased, at most 64 "
        "before the @."
    ),
]

# --- money -----------------------------------------------------------------------------------


def _check_money(value: str) -> str:
    try:
        amount = Decimal(value)
    except ArithmeticError as exc:  # decimal.InvalidOperation
        raise ValueError('money must be a decimal string such as "1250.00"') from exc
    if not amount.is_finite():
        raise ValueError("money must be a finite decimal")
    return value


#: Money travels as a decimal *string*, never a float (`"1250.00"`).
Money = Annotated[
    str,
    # ASCII digits only: `\d` would let any script's digits in, which PostgreSQL refuses
    StringConstraints(strict=True, pattern=r"^-?[0-9]{1,15}(\.[0-9]{1,4})?$"),
    AfterValidator(_check_money),
]

# --- time ------------------------------------------------------------------------------------

#: The earliest and latest instant of a timestamp. A day inside years 1900-9999, so that the
#: same instant is a valid date and time at every UTC offset (converting year 9999 or year 1
#: to UTC or to a company's zone would overflow).
EARLIEST = dt.datetime(1900, 1, 2, tzinfo=dt.UTC)
LATEST = dt.datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=dt.UTC)
FIRST_DATE, LAST_DATE = dt.date(1900, 1, 1), dt.date(9999, 12, 31)
#: A year from 1900 to 9999 as written: a necessary condition of both, for the JSON Schemas.
YEAR_PATTERN = r"^(19[0-9]{2}|[2-9][0-9]{3})-"


def _written(value: Any) -> Any:
    # pydantic would take a number as Unix time (seconds or milliseconds, by its size)
    if isinstance(value, int | float | Decimal):
        raise ValueError("must be a string (RFC 3339 or YYYY-MM-DD), not a number")
    return value


def _check_instant(value: dt.datetime) -> dt.datetime:
    try:
        instant = value.astimezone(dt.UTC)
    except OverflowError:
        instant = None  # before year 1 or after year 9999 in UTC
    if instant is None or not EARLIEST <= instant <= LATEST:
        raise ValueError("must lie between 1900-01-02T00:00:00Z and 9999-12-30T23:59:59.999999Z")
    return value


def _check_date(value: dt.date) -> dt.date:
    if not FIRST_DATE <= value <= LAST_DATE:
        raise ValueError("must lie between 1900-01-01 and 9999-12-31")
    return value


#: RFC 3339 timestamp with an explicit offset, between `EARLIEST` and `LATEST`.
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_written),
    AfterValidator(_check_instant),
    Field(
        description="RFC 3339 with an offset; the instant lies between "
        "1900-01-02T00:00:00Z and 9999-12-30T23:59:59.999999Z.",
        json_schema_extra={"pattern": YEAR_PATTERN},
    ),
]

#: A calendar date `YYYY-MM-DD` from 1900-01-01 to 9999-12-31.
Date = Annotated[
    dt.date,
    BeforeValidator(_written),
    AfterValidator(_check_date),
    Field(
        description="YYYY-MM-DD, from 1900-01-01 to 9999-12-31.",
        json_schema_extra={"pattern": YEAR_PATTERN},
    ),
]

# --- integers --------------------------------------------------------------------------------
# Every integer lands in a PostgreSQL `integer` (versions, attempts, partitions) or `bigint`
# (offsets) column, so it is bounded to fit there.

MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1

NonNegativeInt = Annotated[int, Field(ge=0, le=MAX_INT32)]
PositiveInt = Annotated[int, Field(ge=1, le=MAX_INT32)]
#: A Kafka offset (a signed 64-bit integer).
Offset = Annotated[int, Field(ge=0, le=MAX_INT64)]


class Frozen(BaseModel):
    """Base of every contract model: immutable and closed (unknown fields are refused)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)
