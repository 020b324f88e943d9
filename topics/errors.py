"""The only exceptions that leave `topics`: every decoding failure is one of these."""

from __future__ import annotations


class ContractError(Exception):
    """Base of every error raised while turning bytes into events."""

    stage: str = "schema"

    def __init__(self, reason: str, *, event_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id


class DecodeError(ContractError):
    """The bytes are not a JSON object in UTF-8 (or are too large to try)."""

    stage = "decode"


class SchemaError(ContractError):
    """The JSON is well-formed but does not satisfy the event contract."""

    stage = "schema"
