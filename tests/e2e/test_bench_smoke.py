"""`erp-pipeline bench` end to end on the test stack: the report is complete and adds up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consumers.dev.stack import Stack
from tests.support.processes import cli
from topics.specs import STATUS

pytestmark = pytest.mark.timeout(240)

ITEMS = 100  # enough for every count to add up; the bench measures, this checks it adds up
PENDING = 500
LOAD_ITEMS = 20  # the load run's fewest items (the real bench: 200)


def test_bench_reports_every_item_terminal_and_counts_add_up(
    stack: Stack, worker_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    env = {**worker_env, "DATA_DIR": str(tmp_path / "data")}
    done = cli(
        env,
        "bench",
        "--items",
        str(ITEMS),
        "--pending",
        str(PENDING),
        "--load-seconds",
        "3",
        "--min-samples",
        str(LOAD_ITEMS),
        "--baseline-events",
        "3000",
        "--no-faust-reference",
        "--json",
        str(out),
        timeout=200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # what it is waiting on before the first phase (a broker that does not answer takes 30 s)
    assert "preparing: 127.0.0.1:" in done.stderr.splitlines()[0]
    report = json.loads(out.read_text())

    assert report["machine"]["cpu_count"] >= 1
    assert len(report["machine"]["load_average"]) == 3  # 1, 5 and 15 minutes, as numbers
    assert report["machine"]["packages"]["aiokafka"]
    base = report["baseline"]
    assert base["events"] == 3000
    assert base["consume_events_per_s"] > 0
    # the honest hop (producer defaults) and the one-record hop, each measured
    assert base["hop_events_per_s"] > 0 and base["hop_one_record_events_per_s"] > 0
    for name in ("max", "foreign_partitioner", "load"):
        section = report[name]
        items = section["items"]
        assert section["submitted"] == section["ready_to_export"] == section["terminal"] == items
        assert section["accepted"] + section["rejected_by_approver"] == items
        finals = section["final_statuses"]
        assert sum(finals.values()) == items
        # synced is counted apart from every terminal status
        assert section["synced"] == finals.get("synced", 0) == section["accepted"]
        assert section["synced"] <= section["terminal"]
        assert finals.get("rejected", 0) == section["rejected_by_approver"]
        # percentiles say how many items they were taken from
        assert section["submit_to_ready_ms"]["count"] == items
        assert section["accept_to_synced_ms"]["count"] == section["accepted"]
        assert section["items_per_s"] == pytest.approx(section["terminal"] / section["seconds"])
        assert section["synced_per_s"] > 0
        # the processor reads each submission, each decision and each accepted item's result
        assert section["processor_events"] == items + items + section["accepted"]
        assert section["processor_events_per_s"] == pytest.approx(
            section["processor_events"] / section["seconds"]
        )
    assert report["max"]["items"] == ITEMS
    assert report["load"]["items"] >= LOAD_ITEMS
    # each of the load run's percentiles has at least --min-samples items, accepted ones too
    assert report["load"]["accept_to_synced_ms"]["count"] >= LOAD_ITEMS
    # the same workload with every record re-routed, as a ratio to the native run
    assert report["foreign_partitioner"]["items"] == ITEMS
    foreign = report["foreign_partitioner"]
    assert foreign["ratio_to_native"] == pytest.approx(
        foreign["items_per_s"] / report["max"]["items_per_s"]
    )
    # every submission and decision of that run, and only those, went through erp.item-routes
    assert foreign["rerouted_records"] == foreign["submitted"] + ITEMS
    alone = foreign["processor_alone"]
    assert alone["native_submit_to_ready_ms"]["count"] == ITEMS
    assert alone["foreign_submit_to_ready_ms"]["count"] == ITEMS
    assert alone["ratio_to_native"] == pytest.approx(
        alone["foreign_ready_per_s"] / alone["native_ready_per_s"]
    )
    assert report["max"]["rejected_by_approver"] == ITEMS // 10
    # ratios against the honest hop and the one-record hop, from the figures beside them
    assert report["ratio_to_hop"] == pytest.approx(
        report["max"]["items_per_s"] / base["hop_events_per_s"]
    )
    assert report["ratio_to_one_record_hop"] == pytest.approx(
        report["max"]["items_per_s"] / base["hop_one_record_events_per_s"]
    )

    memory = report["memory"]
    assert memory["reached"] == memory["pending"] == PENDING
    assert memory["rss_after"] > 0
    assert memory["bytes_per_item"] == pytest.approx(
        (memory["rss_after"] - memory["rss_before"]) / PENDING
    )
    # the summary state holds every item the run sent, and those pending wait in it
    assert memory["summary_items"] >= PENDING + 4 * ITEMS + 1  # and the anchor project
    assert memory["summary_ready_items"] >= PENDING
    assert memory["summary_bytes"] > 0
    assert memory["directory_entries"] == 2 and memory["directory_bytes"] > 0

    soak = report["soak"]
    assert soak["samples"] >= 2
    assert soak["rss_first"] <= soak["rss_max"] and soak["rss_last"] <= soak["rss_max"]
    assert isinstance(soak["flat"], bool)

    replay = report["replay"]
    assert replay["measured"] is True
    assert replay["events"] >= report["load"]["items"] + PENDING
    assert replay["ratio_to_consume_only"] == pytest.approx(
        replay["events_per_s"] / base["consume_events_per_s"]
    )
    assert report["faust_reference"]["measured"] is False
    assert report["parameters"]["faust_reference_events"] is None  # skipped, so none read
    # where the soak's CPU went: each worker and the bench itself (the broker is the test's)
    cpu = report["soak_cpu"]["processes"]
    assert {"processor", "exporter", "projection", "bench"} <= set(cpu)
    assert all(f["cpu_s"] >= 0 and f["core_share"] >= 0 for f in cpu.values())

    # one fetch of the fullest partition's last record: the baseline's topic, the run's
    # submissions and statuses, each with its end offset and a timing
    fetches = {
        row["topic"].rsplit(".", 1)[-1] + (" base" if ".base." in row["topic"] else ""): row
        for row in report["broker_fetch"]
    }
    assert set(fetches) == {"submissions base", "submissions", "status"}
    assert fetches["submissions base"]["end_offset"] > 0
    assert all(row["fetch_ms"] > 0 for row in fetches.values())
    # the fullest partition holds at least its share
    assert fetches["status"]["end_offset"] >= PENDING / STATUS.partitions
    assert report["faust_reference"]["ratio"] is None

    # the Targets table: one row per figure, reached marks consistent with the values
    rows = {row["figure"]: row for row in report["targets"]}
    assert len(rows) == 6
    hop = rows["end to end ÷ honest raw hop"]
    assert hop["value"] == report["ratio_to_hop"]
    # 100 items end to end: shown, judged only from the 2 000
    assert hop["reached"] is None and "2k items" in hop["note"]
    p99 = rows["p99 submit → ready_to_export at 20 % load"]
    assert p99["value"] == report["load"]["submit_to_ready_ms"]["p99"]
    n = report["load"]["submit_to_ready_ms"]["count"]
    assert isinstance(n, int)
    # a p99 of fewer than 200 items is shown, not judged
    assert p99["reached"] is (p99["value"] <= 50 if n >= 200 else None)
    assert rows["end to end ÷ faust reference (events/s, same run)"]["reached"] is None
    mem_row = rows["processor memory per pending item (100k pending)"]
    assert mem_row["value"] == memory["bytes_per_item"]
    assert mem_row["reached"] is None and "pending" in mem_row["note"]  # 500, not 100 000
    assert rows["replay ÷ consume-only"]["value"] == replay["ratio_to_consume_only"]
    assert "erp-pipeline bench" in done.stdout
    assert "| figure | now | target | measured |" in done.stdout
