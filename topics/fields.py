"""Constrained field types shared by the event models (the contract's field-level rules)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from topics.limits import REASON_CHARS

#: Tenant id: 1-64 chars of `[A-Za-z0-9_.-]`; it is part of every key.
CompanyId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]

#: An identifier from upstream (item, user): non-empty, no key separator surprises.
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\s:]+$")]

#: A practical e-mail shape check; no DNS, no dependency on email-validator.
Email = Annotated[
    str,
    StringConstraints(max_length=254, pattern=r"^[^@\s<>,;:\"]+@[^@\s<>,;:\"]+\.[^@\s<>,;:\"]+$"),
]

#: Short free text from upstream (titles, names, numbers).
Text = Annotated[str, StringConstraints(max_length=2000)]


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

#: RFC 3339 timestamp with an explicit offset.
Timestamp = AwareDatetime


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


#: A rejection reason: required, non-blank, at most 2000 characters.
Reason = Annotated[str, StringConstraints(max_length=REASON_CHARS), AfterValidator(_non_blank)]

NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveInt = Annotated[int, Field(ge=1)]


class Frozen(BaseModel):
    """Base of every contract model: immutable and closed (unknown fields are refused)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)
