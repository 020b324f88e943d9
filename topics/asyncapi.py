"""The AsyncAPI 3 document of the contract, generated from the topic specs and event models."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from topics.events import EVENT_MODELS
from topics.limits import MAX_EVENT_BYTES, MAX_RECORD_BYTES
from topics.specs import ALL_TOPICS, KeyFormat, TopicSpec

_REF = "#/components/schemas/{model}"

_HEADERS = {
    "type": "object",
    "properties": {
        "event_type": {"type": "string", "description": "Same as the value's event_type."},
        "schema_version": {"type": "string", "description": "Same as the value's schema_version."},
        "correlation_id": {"type": "string", "description": "Copied to every derived event."},
    },
    "description": "Optional on input, always set on output.",
}

_KEY_DESCRIPTIONS = {
    KeyFormat.ITEM: "{company_id}:{item_type}:{item_id}",
    KeyFormat.DIRECTORY: "{company_id}:user:{user_id} or {company_id}:settings",
    KeyFormat.COMPANY_OR_ITEM: "{company_id}:{item_type}:{item_id}, or {company_id} "
    "for events about no item",
}


def _channel_id(spec: TopicSpec) -> str:
    return spec.name.replace(".", "_").replace("-", "_")


def _channel(spec: TopicSpec) -> dict[str, Any]:
    return {
        "address": spec.name,
        "description": f"{spec.description} A deployment may prefix the name (ERP_TOPIC_PREFIX).",
        "messages": {t: {"$ref": f"#/components/messages/{t}"} for t in spec.event_types},
        "bindings": {
            "kafka": {
                "partitions": spec.partitions,
                "topicConfiguration": {
                    "cleanup.policy": spec.cleanup_policy.split(","),
                    "retention.ms": spec.retention_ms,
                },
                "bindingVersion": "0.5.0",
            }
        },
    }


def _message(name: str, spec: TopicSpec) -> dict[str, Any]:
    doc = (EVENT_MODELS[name].__doc__ or "").strip()
    return {
        "name": name,
        "title": name,
        "summary": doc or name,
        "contentType": "application/json",
        "headers": _HEADERS,
        "payload": {"$ref": _REF.format(model=name)},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": _KEY_DESCRIPTIONS[spec.key_format]},
                "bindingVersion": "0.5.0",
            }
        },
    }


#: The field rules every event follows (the README's contract notes list what each one refuses).
CONTRACT_RULES = (
    "Values are UTF-8 JSON objects; a key given twice in one object is refused (stage decode).",
    "Header names are UTF-8, as Kafka types them; a record with a header name that is not is "
    "refused (stage decode). Header values may be any bytes.",
    "The record key is exactly the event's key in its topic's key format: company:type:id of "
    "the body's item (directory: company:user:user_id or company:settings; an event of no item "
    "on a company-keyed topic: the company id). Another key, a null key or one that is not "
    "UTF-8 is refused (stage schema) naming the expected and the given key, and the item's "
    "state is left as it was.",
    "Money is a decimal string of ASCII digits.",
    "No control character (Unicode Cc: U+0000-U+001F, U+007F-U+009F) in identifiers, company "
    "ids, e-mail addresses or one-line text; free text over several lines (descriptions, "
    "addresses, reasons, details, error messages) takes only tab, line feed and carriage "
    "return. A lone surrogate is refused everywhere text is constrained.",
    "E-mail addresses are valid for the email-validator library (syntax only, no DNS; no "
    "quoted local part, no IP literal, a domain with a dot and no special-use name), at most 254 "
    "UTF-8 octets as given, normalized and lowercased (at most 64 before the @), and written "
    "as they are by an e-mail library; they are kept as given.",
    "Integers fit PostgreSQL: versions, attempts and partitions at most 2147483647, offsets at "
    "most 9223372036854775807.",
    "Timestamps are RFC 3339 strings with an offset whose instant lies between "
    "1900-01-02T00:00:00Z and 9999-12-30T23:59:59.999999Z; dates are YYYY-MM-DD strings from "
    "1900-01-01 to 9999-12-31.",
    f"Sizes: a value over {MAX_EVENT_BYTES} bytes is refused (stage decode); every record the "
    f"pipeline writes is at most {MAX_RECORD_BYTES} bytes (key, value and headers), within "
    "Kafka's default limits: a dead letter keeps the start of a value too big to copy whole "
    "(raw_truncated, raw_bytes) and of a long key (source.key_truncated), a daily summary lists "
    "the items waiting longest and counts the rest (more_items), texts the pipeline derives are "
    "cut to their field's limit with a marker, and an input whose outcome would not fit is "
    "refused (stage business_rule) with the item left as it was.",
    "Order: an item's status changes (erp.status) are ordered by payload.sequence, a per-item "
    "counter the processor assigns in the order it applied them, never by occurred_at, which "
    "comes from a sender's clock and is only shown to people. A status change without sequence "
    "was written before the field existed and comes before every one that has it.",
    "Where a pattern cannot say a rule whole (the e-mail library, the instant, lone "
    "surrogates), the pipeline refuses more than the schema: an event it refuses reaches "
    "erp.dead-letters with the stage and the reason.",
)


def render() -> dict[str, Any]:
    """The AsyncAPI 3.0 document as a JSON-ready dict (the pipeline's point of view)."""
    _, top = models_json_schema(
        [(model, "validation") for _, model in sorted(EVENT_MODELS.items())],
        ref_template=_REF,
    )
    channels, operations, messages = {}, {}, {}
    for spec in ALL_TOPICS:
        channel_id = _channel_id(spec)
        channels[channel_id] = _channel(spec)
        action = "receive" if spec.written_by == "upstream" else "send"
        operations[f"{action}_{channel_id}"] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"The pipeline {'consumes' if action == 'receive' else 'publishes'} "
            f"{spec.name} (written by {spec.written_by}).",
            "messages": [
                {"$ref": f"#/channels/{channel_id}/messages/{t}"} for t in spec.event_types
            ],
        }
        messages.update({t: _message(t, spec) for t in spec.event_types})
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "ERP accounting-acceptance pipeline",
            "version": "1.0.0",
            "description": "Event contract v1: what upstream systems publish and what the "
            "pipeline publishes back.\n\n" + "\n".join(f"- {rule}" for rule in CONTRACT_RULES),
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "Set KAFKA_BOOTSTRAP_SERVERS to the real cluster.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": top.get("$defs", {})},
    }
