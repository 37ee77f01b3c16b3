"""An engine of the ``bench`` extra that cannot run here keeps its row, marked n/a with the
reason, and does not fail the benchmark (no broker needed)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _bench(name: str) -> ModuleType:
    """A module of the benchmark package (beside src/, not installed)."""
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    return importlib.import_module(f"bench.{name}")


def test_an_engine_that_is_not_installed_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    engines = _bench("engines")
    monkeypatch.setitem(
        engines.ENGINES, "bytewax", ("no-such-dist-for-bench", "import nothing", "bench.x")
    )
    reason = engines.cannot_run("bytewax")
    assert reason is not None and "not installed" in reason and ".[dev,bench]" in reason


def test_an_engine_that_does_not_import_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    engines = _bench("engines")
    monkeypatch.setitem(
        engines.ENGINES, "pathway", ("orjson", "import no_such_module_for_bench", "bench.x")
    )
    reason = engines.cannot_run("pathway")
    assert reason is not None and "does not import" in reason
    assert "no_such_module_for_bench" in reason


def test_a_row_that_cannot_run_is_na_and_not_a_failure() -> None:
    report_module = _bench("report")
    by_id = {c.id: c for c in _bench("consumers").CONSUMERS}
    ran = {"events_per_s": 10.0, "startup_s": 1.0, "peak_rss_mib": 50.0, "correct": True}
    ran["checks"] = {"what": "x"}
    rows = report_module.with_ratios(
        [
            report_module.summarize(by_id["raw"], [ran]),
            report_module.summarize(by_id["pathway-1m"], [], "pathway is not installed"),
        ]
    )
    assert rows[1]["correct"] is None and rows[1]["ratio_to_raw"] is None
    assert report_module.failed(rows) == []
    assert report_module.failed([{**rows[0], "correct": False}]) != []
    report = {
        "rows": rows,
        "machine": {
            "nproc": 2,
            "cpu_model": "cpu",
            "ram_mib": 1024,
            "python": "3",
            "kernel": "k",
            "load_average_at_start": 0.0,
        },
        "broker": "b",
        "data": {
            "readings": 1,
            "closer_keys": [],
            "sensors": 1,
            "partitions": 1,
            "event_rate_per_s": 1,
            "event_time_span_s": 1,
            "disorder_ms": 0,
            "grace_ms": 0,
            "produce_seconds": 1,
            "produce_records_per_s": 1,
        },
        "rounds": 1,
        "code": {"git_head": "h", "src_sha256_at_start": "s"},
        "method": {},
    }
    table = report_module.format_table(report)
    assert "| pathway 1m" in table and table.rstrip().endswith("| n/a |")
    notes = report_module.format_notes(report)
    assert any("cannot run here: pathway is not installed" in line for line in notes)
