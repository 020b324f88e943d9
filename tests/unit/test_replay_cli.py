"""The replay command's report file: format by extension, an interrupted replay marked partial."""

from __future__ import annotations

import json
from pathlib import Path

from consumers.cli.replay import PARTIAL, _write_report
from consumers.replay.read import ReplayResult
from pipeline.replay.audit import COLUMNS
from pipeline.replay.rebuild import Rebuilt


def test_a_partial_report_says_so_on_its_first_line(tmp_path: Path) -> None:
    _write_report(tmp_path / "r.csv", ReplayResult(Rebuilt(), partial=True))
    first, header = (tmp_path / "r.csv").read_text().splitlines()
    assert first == f"# {PARTIAL}" and header.split(",") == COLUMNS
    _write_report(tmp_path / "r.jsonl", ReplayResult(Rebuilt(), partial=True))
    assert json.loads((tmp_path / "r.jsonl").read_text()) == {"partial": True}


def test_a_complete_report_has_no_marker(tmp_path: Path) -> None:
    _write_report(tmp_path / "r.jsonl", ReplayResult(Rebuilt()))
    assert (tmp_path / "r.jsonl").read_text() == ""
