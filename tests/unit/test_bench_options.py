"""`erp-pipeline bench` refuses what would waste a long run before it starts, and judges the
issue's targets only on what the issue judges them on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from consumers.bench.report import soak_verdict, targets
from consumers.cli.bench import bench_cmd
from pipeline.kafka import KafkaUnavailable


@pytest.fixture(autouse=True)
def _no_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value that passes the checks must not start a real run of many minutes here."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the options were accepted: the bench would have started")

    monkeypatch.setattr("consumers.dev.stack.running_stack", refuse)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--items", "0"], "--items"),
        (["--items", "-5"], "--items"),
        (["--pending", "0"], "--pending"),
        (["--pending", "-1"], "--pending"),
        (["--load-seconds", "0"], "--load-seconds"),
        (["--load-seconds", "-3"], "--load-seconds"),
        (["--load-seconds", "nan"], "--load-seconds"),
        (["--load-seconds", "inf"], "--load-seconds"),
        (["--min-samples", "-1"], "--min-samples"),
        (["--baseline-events", "-1"], "--baseline-events"),
        (["--json", "/nonexistent-folder/report.json"], "no folder"),
        # root passes a permission check on /proc; only opening the file finds it out
        (["--json", "/proc/report.json"], "cannot write"),
        (["--json", ""], "a file name"),
        (["--json", "."], "is a directory"),
        (["--types", "project,project"], "twice"),
        (["--types", "project,"], "empty type"),
        (["--json", "-"], "a file name"),
        # sizes past any sensible run: the baseline's list filled 10 GB and ignored Ctrl-C
        (["--baseline-events", "10000000000000"], "--baseline-events"),
        (["--items", "99999999999999999999999"], "--items"),
        (["--pending", "1000000000000"], "--pending"),
        (["--load-seconds", "1e300"], "--load-seconds"),
        (["--min-samples", "100000000000000"], "--min-samples"),
    ],
)
def test_values_that_would_waste_a_run_are_refused_before_it_starts(
    args: list[str], words: str
) -> None:
    """These ran every phase (a folder-less --json lost the report after the whole run, in a
    traceback; a negative --pending printed 44 KiB "per pending item")."""
    result = CliRunner().invoke(bench_cmd, args)
    assert result.exit_code == 2, result.output
    assert words in result.output


def test_a_path_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO blocked the check (opened for appending, no reader); a device passed it."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/full")):
        result = CliRunner().invoke(bench_cmd, ["--json", str(path)])
        assert result.exit_code == 2, result.output
        assert "not a regular file" in result.output


def test_checking_a_path_changes_nothing_there(tmp_path: Path) -> None:
    """Through a dangling link the check removed the user's link and left an empty file."""
    link, target = tmp_path / "link.json", tmp_path / "target.json"
    link.symlink_to(target)
    existing = tmp_path / "kept.json"
    existing.write_text("earlier report")
    before = existing.stat().st_mtime_ns
    for path in (link, existing, tmp_path / "new.json"):
        with pytest.raises(AssertionError, match="the bench would have started"):
            CliRunner().invoke(bench_cmd, ["--json", str(path)], catch_exceptions=False)
    assert link.is_symlink() and not target.exists()
    assert existing.read_text() == "earlier report" and existing.stat().st_mtime_ns == before
    assert not (tmp_path / "new.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.json", "link.json"]


def test_a_broker_that_cannot_be_reached_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bench printed ~150 connection errors and tracebacks."""

    def unreachable(*_args: object, **_kwargs: object) -> None:
        raise KafkaUnavailable("could not create topics: Unable to bootstrap")

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setattr("consumers.dev.stack.running_stack", unreachable)
    result = CliRunner().invoke(bench_cmd, ["--items", "30"])
    assert result.exit_code == 1
    preparing, error = result.output.strip().splitlines()
    assert preparing.startswith("▸ preparing: 127.0.0.1:1")
    assert error == (
        "Error: the Kafka broker at 127.0.0.1:1 cannot be used: could not create topics: "
        "Unable to bootstrap"
    )


def test_a_read_only_folder_is_refused_too(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    if os.access(folder, os.W_OK):  # root writes anywhere: the run would start
        pytest.skip("running as a user that may write a read-only folder")
    result = CliRunner().invoke(bench_cmd, ["--json", str(folder / "r.json")])
    assert result.exit_code == 2, result.output
    assert "cannot write" in result.output


def _report(
    n: int, pending: int, soak_s: float, replayed: int = 50_000, items: int = 2_000
) -> dict[str, Any]:
    latency = {"p50": 10.0, "p95": 20.0, "p99": 30.0, "count": n}
    return {
        "ratio_to_hop": 0.04,
        "max": {"items": items},
        "faust_reference": {"ratio": 0.6},
        "baseline": {"events": 20_000},
        "replay": {"ratio_to_consume_only": 0.4, "events": replayed},
        "load": {"submit_to_ready_ms": latency, "accept_to_synced_ms": latency},
        "memory": {"bytes_per_item": 900.0, "reached": pending},
        "soak": {"flat": True, "seconds": soak_s, "samples": int(soak_s / 2) + 1},
    }


def test_targets_are_judged_only_on_what_the_issue_judges_them_on() -> None:
    """A p99 from 3 items and a memory figure from 10 pending items over a 0-second soak were
    marked "reached"."""
    small = {row["figure"]: row for row in targets(_report(n=13, pending=10, soak_s=0.0))}
    for figure in ("p99 submit → ready_to_export at 20 % load", "p99 accept → synced at 20 % load"):
        assert small[figure]["reached"] is None and "n < 200" in small[figure]["note"]
        assert small[figure]["value"] == 30.0  # still shown
    memory = small["processor memory per pending item (100k pending)"]
    assert memory["reached"] is None and "pending" in memory["note"]

    short_soak = targets(_report(n=200, pending=100_000, soak_s=120.0))
    assert "soak" in short_soak[4]["note"] and short_soak[4]["reached"] is None

    full = {row["figure"]: row for row in targets(_report(n=200, pending=100_000, soak_s=600.0))}
    assert full["p99 submit → ready_to_export at 20 % load"]["reached"] is True
    assert full["p99 accept → synced at 20 % load"]["reached"] is True
    assert full["processor memory per pending item (100k pending)"]["reached"] is True
    assert (
        "soak flat over 600s"
        in full["processor memory per pending item (100k pending)"]["measured"]
    )
    assert full["replay ÷ consume-only"]["reached"] is True
    assert full["end to end ÷ honest raw hop"]["reached"] is True
    assert full["end to end ÷ faust reference (events/s, same run)"]["reached"] is True
    assert all(row["note"] is None for row in full.values())


def test_throughput_from_fewer_items_than_the_issues_run_is_shown_not_judged() -> None:
    """30 items over 0.6 s were marked "not reached" against the hop, and the p99s at 20 %
    of that rate were judged."""
    rows = targets(_report(n=200, pending=100_000, soak_s=600.0, items=30))
    for row in rows[:4]:
        assert row["value"] in (0.04, 0.6, 30.0)  # still shown
        assert row["reached"] is None and "fewer than 2k items" in row["note"]
    assert "(30 items)" in rows[0]["measured"]
    assert "20 % load" in rows[2]["note"]
    assert (
        "(1 item)" in targets(_report(n=200, pending=100_000, soak_s=600.0, items=1))[0]["measured"]
    )


def test_ratios_against_a_baseline_of_a_few_records_are_not_judged() -> None:
    """A replay ratio against a consume-only rate from one record was "not reached"."""
    report = _report(n=200, pending=100_000, soak_s=600.0)
    report["baseline"]["events"] = 1
    rows = targets(report)
    # the faust reference reads the baseline's records too: one record was "reached"
    for row in (rows[0], rows[1], rows[5]):
        assert row["reached"] is None and "baseline of fewer than 5k" in row["note"]


def test_a_skipped_faust_reference_says_so() -> None:
    report = _report(n=200, pending=100_000, soak_s=600.0)
    report["faust_reference"] = {"ratio": None, "note": "faust reference: skipped"}
    row = targets(report)[1]
    assert row["value"] is None and row["reached"] is None
    assert row["note"] == "faust reference: skipped"


def test_a_replay_shorter_than_its_baseline_is_shown_not_judged() -> None:
    """A replay of a 3 000-record run was divided by a 5 000-record baseline and judged."""
    row = targets(_report(n=200, pending=100_000, soak_s=600.0, replayed=3_000))[5]
    assert row["value"] == 0.4 and "3,000 events" in row["measured"]
    assert row["reached"] is None and "20,000" in row["note"]


@pytest.mark.parametrize(
    ("seconds", "flat", "words"),
    [
        (4.0, True, "not judged"),  # 3 samples were called "flat"
        (120.0, False, "not judged"),
        (600.0, True, "flat"),
        (600.0, False, "NOT flat"),
    ],
)
def test_the_soak_is_called_flat_only_after_the_issues_ten_minutes(
    seconds: float, flat: bool, words: str
) -> None:
    soak = {"flat": flat, "seconds": seconds, "samples": int(seconds / 2) + 1}
    assert soak_verdict(soak) == words or soak_verdict(soak).startswith(words + " ")
    assert soak_verdict({"samples": 0, "flat": None}) == "not sampled"
