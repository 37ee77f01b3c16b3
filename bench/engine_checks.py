"""Correctness of the Bytewax and Pathway rows' output topics: the same (sensor, 1-minute window)
figures as the Quix row, read the way each engine writes them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import orjson

from bench.checks import check_windows, quix_window
from bench.data import CLOSER_PREFIX, Figures

Records = Iterable[tuple[bytes | None, bytes | None]]
WHAT = (
    "output topic holds exactly the expected (sensor, 1-minute window) results, "
    "count/min/max exact and sum within 1e-9 relative"
)


def _is_closer(sensor: str) -> bool:
    return sensor.startswith(CLOSER_PREFIX)


def check_bytewax(records: Records, expected: dict[tuple[str, int], Figures]) -> dict:
    """Bytewax writes each window once, when it closes (key = sensor id, value = {start, end,
    count, sum, min, max}); at the end of the input it closes every window still open, the
    closer readings' too: those are counted, not judged."""
    data, closers = [], 0
    for key, value in records:
        if _is_closer((key or b"").decode(errors="replace")):
            closers += 1
        else:
            data.append((key, value))
    checks = check_windows(data, expected, quix_window)
    checks["what"] = WHAT + ", each once (the closer readings' windows, closed at the end of "
    checks["what"] += "the input, not judged)"
    checks["closer_windows_not_judged"] = closers
    return checks


def _pathway_window(key: bytes | None, value: bytes | None) -> tuple[tuple[str, int], Figures]:
    record = orjson.loads(value or b"null")
    return (record["sensor_id"], record["start"]), Figures(
        record["end"], record["count"], record["sum"], record["min"], record["max"]
    )


def check_pathway(records: Records, expected: dict[tuple[str, int], Figures]) -> dict:
    """Pathway writes an update stream: every change of a window is a retraction of its old row
    (``diff`` -1) and the new row (``diff`` +1). The net rows (each distinct row's diffs added
    up) must be exactly the expected windows, each once, with none below zero; the closer
    readings' windows are counted, not judged."""
    net: Counter[bytes] = Counter()
    written = retractions = unparsable = 0
    for _key, value in records:
        written += 1
        try:
            record = orjson.loads(value or b"null")
            diff = int(record.pop("diff"))
            record.pop("time", None)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            unparsable += 1
            continue
        retractions += diff < 0
        net[orjson.dumps(record, option=orjson.OPT_SORT_KEYS)] += diff
    negative = sum(1 for n in net.values() if n < 0)
    rows, closers = [], 0
    for row, n in net.items():
        if n > 0 and _is_closer(str(orjson.loads(row).get("sensor_id", ""))):
            closers += n
        else:
            rows.extend([(None, row)] * max(n, 0))
    checks = check_windows(rows, expected, _pathway_window)
    checks["what"] = (
        WHAT + ", each once after adding up Pathway's update stream (retractions, diff -1, "
        "and new rows, diff +1); no row retracted more often than written (the closer "
        "readings' windows not judged)"
    )
    checks["rows_written"] = written
    checks["retractions"] = retractions
    checks["net_negative_rows"] = negative
    checks["unparsable"] = int(checks["unparsable"]) + unparsable  # type: ignore[call-overload]
    checks["closer_windows_not_judged"] = closers
    checks["ok"] = bool(checks["ok"]) and not negative and not unparsable
    return checks
