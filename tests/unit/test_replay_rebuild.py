"""The replay's merge, rebuild and audit report, with no broker."""

from __future__ import annotations

import json
from typing import Any

from consumers.dev import samples as se
from pipeline.replay.audit import COLUMNS, table, to_csv, to_jsonl, totals
from pipeline.replay.entries import TOPIC_RANK, Entry, merged
from pipeline.replay.rebuild import Rebuild
from pipeline.replay.verdicts import Verdicts
from pipeline.rules.derive import export_id
from pipeline.rules.machine import Outcome
from pipeline.rules.refusals import refusal
from tests.support.rules import at, directory, event, run
from topics.events import EventRefused, ItemEvent
from topics.payloads import RefusalStage
from topics.record import Record

COMMITMENT = ("commitment", "sc-1")
KEY = f"{se.COMPANY}:commitment:sc-1"
_offsets: dict[str, int] = {}


def entry(e: ItemEvent, topic: str, reported: bool = True) -> Entry:
    offset = _offsets.get(topic, 0)
    _offsets[topic] = offset + 1
    record = Record(f"erp.{topic}", 0, offset, e.item_key.encode(), b"{}")
    return Entry(e, record, TOPIC_RANK[topic], reported)


def rebuild(entries: list[Entry], verdicts: Verdicts | None = None) -> Rebuild:
    r = Rebuild(verdicts)
    r.directory_event(event(se.company_settings(), -100))
    r.directory_event(event(se.approver_updated(se.APPROVER), -100))
    r.directory_event(event(se.approver_updated(se.VIEWER, privileged=False), -100))
    streams: dict[str, list[Entry]] = {}
    for e in entries:
        streams.setdefault(e.record.topic, []).append(e)
    r.item(KEY, streams.values())
    return r


def exported(version: int, minutes: int, reference: str) -> Any:
    raw = se.envelope(
        "ItemExported",
        item=COMMITMENT,
        export_id=export_id(KEY, version),
        erp_reference=reference,
        exported_at=at(minutes).isoformat(),
    )
    return event(raw, minutes)


def failed(version: int, minutes: int) -> Any:
    raw = se.envelope(
        "ExportAttemptFailed",
        item=COMMITMENT,
        export_id=export_id(KEY, version),
        attempt=1,
        retryable=False,
        error_code="unknown_vendor",
        error_message="vendor V7777 is not in vendors",
    )
    return event(raw, minutes)


def test_merge_keeps_each_topics_order_and_breaks_ties_by_topic() -> None:
    sub = entry(event(se.commitment_submitted("sc-1"), 5), "submissions")
    late_clock = entry(event(se.rejected(*COMMITMENT, "x"), 1), "decisions")
    next_one = entry(event(se.rejected(*COMMITMENT, "y"), 0), "decisions")
    same_time = entry(event(se.retrieved(*COMMITMENT), 5), "decisions")
    order = list(merged([[late_clock, next_one, same_time], [sub]]))
    # the decisions topic's own order holds even when its clocks disagree
    assert order == [late_clock, next_one, sub, same_time]


def test_the_whole_story_of_an_item_with_a_failed_export_and_a_retry() -> None:
    result = rebuild(
        [
            entry(event(se.commitment_submitted("sc-1"), 0), "submissions"),
            entry(event(se.rejected(*COMMITMENT, "Wrong vendor"), 1), "decisions"),
            entry(event(se.commitment_submitted("sc-1"), 2), "submissions"),
            entry(event(se.accepted(*COMMITMENT, details="ok"), 3), "decisions"),
            entry(failed(2, 4), "export-results"),
            entry(
                event(se.envelope("ExportRetryRequested", item=COMMITMENT, actor=se.APPROVER), 5),
                "decisions",
            ),
            entry(exported(2, 6, "SC-1"), "export-results"),
        ]
    ).result
    state = result.states[KEY]
    assert (state.status, state.version, state.erp_reference) == ("synced", 2, "SC-1")
    rows = {row.decision: row for row in result.rows}
    assert set(rows) == {"rejected", "accepted", "export_retry"}
    assert (rows["rejected"].outcome, rows["rejected"].status_after) == ("applied", "rejected")
    assert rows["rejected"].submission_version == 1 and rows["rejected"].detail == "Wrong vendor"
    accepted = rows["accepted"]
    assert (accepted.submission_version, accepted.status_after) == (2, "exporting")
    assert accepted.export_id == export_id(KEY, 2) and accepted.attempt == 1
    assert accepted.export_error.startswith("unknown_vendor") and not accepted.erp_reference
    assert json.loads(accepted.detail) == {"details": "ok"}
    retry = rows["export_retry"]
    assert (retry.attempt, retry.erp_reference, retry.outcome) == (2, "SC-1", "applied")
    assert {row.final_status for row in result.rows} == {"synced"}
    assert all(row.sent_by == se.SENDER["email"] for row in result.rows)
    assert result.events == 3 + 7


def live_verdicts(*outcomes: Outcome, verdicts: Verdicts | None = None) -> Verdicts:
    """The refusals at `authorize` the live rules published, as replay reads them."""
    verdicts = verdicts or Verdicts()
    for outcome in outcomes:
        for dead in outcome.events:
            if isinstance(dead, EventRefused):
                verdicts.add(dead)
    return verdicts


def test_a_refused_decision_is_reported_with_its_reason() -> None:
    events = [
        event(se.commitment_submitted("sc-1"), 0),
        event(se.rejected(*COMMITMENT, "no", actor=se.VIEWER), 1),
    ]
    verdicts = live_verdicts(*run(events)[1])
    result = rebuild(
        [entry(events[0], "submissions"), entry(events[1], "decisions")], verdicts
    ).result
    (row,) = result.rows
    assert row.outcome == "refused" and row.refusal.startswith("authorize: user u-vic")
    assert row.status_after == "" and row.final_status == "ready_to_export"


def test_a_decision_for_a_version_not_seen_yet_is_applied_when_it_arrives() -> None:
    accept = se.accepted(*COMMITMENT, submission_version=2)
    result = rebuild(
        [
            entry(event(se.commitment_submitted("sc-1"), 0), "submissions"),
            entry(event(se.retrieved(*COMMITMENT), 1), "submissions"),
            entry(event(accept, 2), "decisions"),
            entry(event(se.commitment_submitted("sc-1"), 3), "submissions"),
        ]
    ).result
    rows = {row.decision: row for row in result.rows}
    assert rows["accepted"].outcome == "applied" and rows["accepted"].status_after == "exporting"
    assert rows["accepted"].submission_version == 2
    assert rows["retrieved"].decided_by == se.SENDER["email"]
    assert result.states[KEY].status == "exporting"


def test_decisions_before_the_window_shape_state_but_are_not_reported() -> None:
    result = rebuild(
        [
            entry(event(se.commitment_submitted("sc-1"), 0), "submissions", reported=False),
            entry(event(se.rejected(*COMMITMENT, "old"), 1), "decisions", reported=False),
            entry(event(se.commitment_submitted("sc-1"), 2), "submissions"),
            entry(event(se.rejected(*COMMITMENT, "new"), 3), "decisions"),
        ]
    ).result
    (row,) = result.rows
    assert (row.detail, row.submission_version) == ("new", 2)


def test_reports_are_deterministic_and_totals_count_statuses_and_approvers() -> None:
    stories = [
        entry(event(se.commitment_submitted("sc-1"), 0), "submissions"),
        entry(event(se.rejected(*COMMITMENT, 'Wrong, "vendor"'), 1), "decisions"),
    ]
    first, second = rebuild(stories).result, rebuild(stories).result
    assert to_csv(first.rows) == to_csv(second.rows)
    assert to_jsonl(first.rows) == to_jsonl(second.rows)
    header, line = to_csv(first.rows).splitlines()
    assert header.split(",") == COLUMNS and '"Wrong, ""vendor"""' in line
    assert json.loads(to_jsonl(first.rows))["decided_by"] == se.APPROVER["email"]
    header, line = table(first.rows, ["decision", "detail"], width=8).splitlines()
    assert header.split() == ["decision", "detail"] and line.split("  ") == ["rejected", "Wrong, …"]
    counted = totals(first.rows, {KEY: "rejected"})
    assert counted["status"] == {"rejected": 1}
    assert counted["approver"] == {f"{se.APPROVER['email']} rejected applied": 1}


def test_an_error_in_the_rules_is_reported_like_the_live_dead_letter(monkeypatch: Any) -> None:
    import pipeline.replay.rebuild

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("boom")

    monkeypatch.setattr(pipeline.replay.rebuild, "react", broken)
    result = rebuild([entry(event(se.rejected(*COMMITMENT, "x"), 1), "decisions")]).result
    (row,) = result.rows
    assert (row.outcome, row.refusal) == (
        "refused",
        "business_rule: unexpected error: ValueError: boom",
    )
    assert result.states == {}


def test_a_reject_and_the_re_send_after_it_stamped_alike_replay_as_they_were_applied() -> None:
    """Live, the re-send could only be applied once the reject had made the item sendable;
    with both stamped at the same instant, a merge by time (submissions first) refused it."""
    result = rebuild(
        [
            entry(event(se.commitment_submitted("sc-1"), 0), "submissions"),
            entry(event(se.rejected(*COMMITMENT, "Wrong vendor"), 5), "decisions"),
            entry(event(se.commitment_submitted("sc-1"), 5), "submissions"),
        ]
    ).result
    state = result.states[KEY]
    assert (state.status, state.version, state.sequence) == ("ready_to_export", 2, 3)
    (row,) = result.rows
    assert (row.outcome, row.status_after) == ("applied", "rejected")


def test_an_answer_stamped_before_its_accept_replays_after_it() -> None:
    """The accept's clock runs ten minutes ahead of the exporter's: the ERP's answer still
    follows the accept that asked for it."""
    result = rebuild(
        [
            entry(event(se.commitment_submitted("sc-1"), 0), "submissions"),
            entry(event(se.accepted(*COMMITMENT, details="ok"), 12), "decisions"),
            entry(exported(1, 3, "SC-1"), "export-results"),
        ]
    ).result
    state = result.states[KEY]
    assert (state.status, state.erp_reference) == ("synced", "SC-1")


def test_replay_gives_the_live_verdicts_before_and_after_a_revocation() -> None:
    """Live, the accept was judged before the revocation was applied and the reject of the
    failed export after it (backdated before it). Replay's directory holds only the revoked
    entry, and the reject's time would find the grant: neither is consulted, the live verdicts
    are."""
    live = directory()
    submitted = event(se.commitment_submitted("sc-1"), 0)
    accept = event(se.accepted(*COMMITMENT), 2)
    export_failed = failed(1, 3)
    reject = event(se.rejected(*COMMITMENT, "no"), 1)
    state, before = run([submitted, accept, export_failed], live)
    live.apply(event(se.approver_updated(se.APPROVER, privileged=False), 4))
    _, after = run([reject], live, state=state)
    verdicts = live_verdicts(*before, *after)
    replayed = Rebuild(verdicts)
    for version in live.latest.values():
        replayed.directory_event(version)
    replayed.item(
        KEY,
        [
            [entry(submitted, "submissions")],
            [entry(accept, "decisions"), entry(reject, "decisions")],
            [entry(export_failed, "export-results")],
        ],
    )
    rows = {row.decision: row for row in replayed.result.rows}
    assert rows["accepted"].outcome == "applied"
    assert rows["rejected"].outcome == "refused"
    assert rows["rejected"].refusal.startswith("authorize: user u-ana may not push")
    assert replayed.result.states[KEY].status.value == "failed_to_export"


def test_the_audit_names_the_decider_as_the_directory_does_not_as_the_event_claims() -> None:
    claimed = {**se.APPROVER, "email": "not.ana@acme.example", "name": "Not Ana"}
    stories = [
        entry(event(se.commitment_submitted("sc-1"), 0), "submissions"),
        entry(event(se.rejected(*COMMITMENT, "Wrong vendor", actor=claimed), 1), "decisions"),
    ]
    (row,) = rebuild(stories).result.rows
    assert (row.outcome, row.decided_by) == ("applied", se.APPROVER["email"])


def _refused_live(e: Entry, stage: RefusalStage, reason: str) -> Verdicts:
    """The dead letter the live processor wrote for the record of `e`, as replay reads it."""
    verdicts = Verdicts()
    verdicts.add(refusal(e.record, stage, reason, event=e.event))
    return verdicts


def test_a_decision_live_read_before_its_submission_is_refused_in_replay_too() -> None:
    """Live, the accept (no submission_version) was read before the submission and refused
    as for an unknown item; the topics alone would replay it after the submission."""
    accept = entry(event(se.accepted(*COMMITMENT), 1), "decisions")
    submitted = entry(event(se.commitment_submitted("sc-1"), 0), "submissions")
    unknown = "ItemAccepted is not allowed for an item that is unknown"
    replayed = rebuild([submitted, accept], _refused_live(accept, RefusalStage.TRANSITION, unknown))
    assert replayed.result.states[KEY].status.value == "ready_to_export"
    (row,) = replayed.result.rows
    assert (row.outcome, row.refusal) == ("refused", f"transition: {unknown}")
    assert rebuild([submitted, accept]).result.states[KEY].status.value == "exporting"


def test_of_an_accept_and_a_retrieve_replay_applies_the_one_live_applied() -> None:
    """Both could follow the submission; live read the retrieve first (whatever the senders'
    clocks say) and refused the accept."""
    submitted = entry(event(se.commitment_submitted("sc-1"), 0), "submissions")
    retrieve = entry(event(se.retrieved(*COMMITMENT), 5), "submissions")
    accept = entry(event(se.accepted(*COMMITMENT), 1), "decisions")
    late = "ItemAccepted is not allowed in status retrieved"
    replayed = rebuild(
        [submitted, retrieve, accept], _refused_live(accept, RefusalStage.TRANSITION, late)
    )
    assert replayed.result.states[KEY].status.value == "retrieved"
    rows = {row.decision: row for row in replayed.result.rows}
    assert rows["accepted"].outcome == "refused" and rows["retrieved"].outcome == "applied"


def test_a_copy_of_an_applied_decision_refused_live_leaves_the_first_applied() -> None:
    """Verdicts are by record: the same event published twice met two fates."""
    submitted = entry(event(se.commitment_submitted("sc-1"), 0), "submissions")
    reject = event(se.rejected(*COMMITMENT, "no"), 1)
    first, again = entry(reject, "decisions"), entry(reject, "decisions")
    replayed = rebuild(
        [submitted, first, again], _refused_live(again, RefusalStage.TRANSITION, "stale")
    )
    assert replayed.result.states[KEY].status.value == "rejected"


def test_what_live_applied_is_not_measured_again(monkeypatch: Any) -> None:
    """Live refusals (a record too big to apply among them) come from erp.dead-letters: replay
    does not measure the outcomes of records live applied."""
    import pipeline.rules.engine

    def measured(*args: Any) -> Any:
        raise AssertionError("replay measured an outcome")

    monkeypatch.setattr(pipeline.rules.engine, "oversize", measured)
    result = rebuild(
        [
            entry(event(se.commitment_submitted("sc-1"), 0), "submissions"),
            entry(event(se.accepted(*COMMITMENT, details="ok"), 1), "decisions"),
        ]
    ).result
    assert result.states[KEY].status == "exporting"
    assert [row.outcome for row in result.rows] == ["applied"]


def test_the_rebuilt_result_has_a_short_repr() -> None:
    """`asyncio.run(replay(...))` makes a repr of the result on its way out (Python 3.11)."""
    from consumers.replay.read import ReplayResult

    many = rebuild([entry(event(se.commitment_submitted("sc-1"), 0), "submissions")]).result
    many.states.update({f"{KEY}-{n}": many.states[KEY] for n in range(1000)})
    assert len(repr(ReplayResult(many, records=1001))) < 200
