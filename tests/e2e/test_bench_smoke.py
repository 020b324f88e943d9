"""`erp-pipeline bench` end to end on the test stack: the report is complete and adds up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consumers.dev.stack import Stack
from tests.support.processes import cli

pytestmark = pytest.mark.timeout(240)

ITEMS = 200  # enough for every count to add up; the bench measures, this checks it adds up


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
        "500",
        "--load-seconds",
        "3",
        "--baseline-events",
        "3000",
        "--no-faust-reference",
        "--json",
        str(out),
        timeout=200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())

    assert report["machine"]["cpu_count"] >= 1
    assert report["machine"]["packages"]["aiokafka"]
    assert report["baseline"]["events"] == 3000
    assert report["baseline"]["hop_events_per_s"] > 0
    assert report["baseline"]["consume_events_per_s"] > 0
    for name in ("max", "foreign_partitioner", "load"):
        section = report[name]
        items = section["items"]
        assert section["submitted"] == section["ready_to_export"] == section["terminal"] == items
        assert section["accepted"] + section["rejected_by_approver"] == items
        finals = section["final_statuses"]
        assert sum(finals.values()) == items
        assert finals.get("synced", 0) == section["accepted"]
        assert finals.get("rejected", 0) == section["rejected_by_approver"]
        assert section["submit_to_ready_ms"]["count"] == items
        assert section["accept_to_synced_ms"]["count"] == section["accepted"]
        assert section["items_per_s"] > 0
    assert report["max"]["items"] == ITEMS
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
    assert report["ratio_to_hop"] > 0
    assert report["memory"]["reached"] == report["memory"]["pending"] == 500
    assert report["memory"]["rss_after"] > 0
    assert "measured" in report["replay"]
    assert report["faust_reference"]["measured"] is False
    assert "erp-pipeline bench" in done.stdout
