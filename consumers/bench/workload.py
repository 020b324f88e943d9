"""The benchmark's items: submissions and the automatic approver's decisions (plain dicts)."""

from __future__ import annotations

from typing import Any

from consumers.dev import samples as se

TYPES = ("project", "commitment")
#: The project every benchmark commitment belongs to; exported before the clock starts.
ANCHOR_PROJECT = "prj-anchor"
ANCHOR_JOB = "ANCHOR"
#: One item in REJECT_EVERY is rejected; the rest are accepted.
REJECT_EVERY = 10


def item_types(spec: str) -> tuple[str, ...]:
    """`--types`: "mix" (every type in turn) or a comma-separated list of types, each once.

    Raises ValueError for an empty entry, an unknown type, or one named twice.
    """
    known = f"known: {', '.join(TYPES)}, or mix alone"
    wanted = TYPES if spec.strip() == "mix" else tuple(t.strip() for t in spec.split(","))
    if not all(wanted):
        raise ValueError(f"an empty type in {spec!r}; {known}")
    unknown = [t for t in wanted if t not in TYPES]
    if unknown:
        raise ValueError(f"unknown item type(s) {', '.join(unknown)}; {known}")
    twice = sorted({t for t in wanted if wanted.count(t) > 1})
    if twice:  # it would weigh the mix without saying so
        raise ValueError(f"{', '.join(twice)} named twice; name each type once")
    return wanted


def item_type(index: int, types: tuple[str, ...]) -> str:
    return types[index % len(types)]


def item_id(index: int, types: tuple[str, ...]) -> str:
    return f"{'prj' if item_type(index, types) == 'project' else 'sc'}-b{index}"


def _number(index: int) -> str:
    # ERP job and commitment numbers are at most 10 characters
    return f"B{index:08d}"


def submission(company: str, index: int, types: tuple[str, ...]) -> dict[str, Any]:
    """The submission of item `index` (valid under the send-time rules)."""
    kind = item_type(index, types)
    if kind == "project":
        event = se.project_submitted(item_id(index, types), project_number=_number(index))
    else:
        event = se.commitment_submitted(item_id(index, types), number=_number(index))
        event["payload"]["project"] = {"id": ANCHOR_PROJECT, "name": "Benchmark anchor"}
    event["company_id"] = company
    return event


def anchor(company: str) -> dict[str, Any]:
    """The project the commitments hang off."""
    event = se.project_submitted(ANCHOR_PROJECT, project_number=ANCHOR_JOB)
    event["company_id"] = company
    return event


def accepts(index: int) -> bool:
    return index % REJECT_EVERY != REJECT_EVERY - 1


def items_for_accepted(first: int, accepted: int) -> int:
    """How many items from index `first` on hold `accepted` items the approver accepts (the
    accept → synced percentiles' n; one in `REJECT_EVERY` is rejected)."""
    count = taken = 0
    while taken < accepted:
        taken += accepts(first + count)
        count += 1
    return count


def index_of(ident: str) -> int:
    """The index back from an item id (-1 for items that are not the benchmark's)."""
    _, _, tail = ident.partition("-b")
    return int(tail) if tail.isdigit() else -1


def decision(company: str, kind: str, ident: str, version: int) -> dict[str, Any]:
    """The approver's answer to one ready_to_export status: accept 90 %, reject 10 %."""
    index = index_of(ident)
    if ident == ANCHOR_PROJECT:
        event = se.accepted(kind, ident, erp_job_id=ANCHOR_JOB, job_template="COMM")
    elif not accepts(index):
        event = se.rejected(kind, ident, "benchmark: rejected on purpose")
    elif kind == "project":
        event = se.accepted(kind, ident, erp_job_id=_number(index), job_template="COMM")
    else:
        event = se.accepted(kind, ident)
    event["company_id"] = company
    event["payload"]["submission_version"] = version
    return event


def directory(company: str) -> list[dict[str, Any]]:
    """Settings and one privileged approver for the benchmark's company."""
    events = [se.company_settings(), se.approver_updated(se.APPROVER)]
    for event in events:
        event["company_id"] = company
    return events
