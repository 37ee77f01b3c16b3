"""Correctness of a consumer's output against the expectations computed from the data set."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable

import orjson

from bench.data import Figures

Parsed = tuple[tuple[str, int], Figures]
REL_TOL = 1e-9
ABS_TOL = 1e-6


def faustapp_window(key: bytes | None, value: bytes | None) -> Parsed:
    """A faustapp window result (sensor-stats-1m/5m, sensor-sessions)."""
    record = orjson.loads(value or b"null")
    return (record["sensor_id"], record["window_start"]), Figures(
        record["window_end"], record["count"], record["sum"], record["min"], record["max"]
    )


def quix_window(key: bytes | None, value: bytes | None) -> Parsed:
    """A Quix Streams window result: key = sensor id, value {start, end, count, sum, min, max}."""
    record = orjson.loads(value or b"null")
    return ((key or b"").decode(), record["start"]), Figures(
        record["end"], record["count"], record["sum"], record["min"], record["max"]
    )


def _same(got: Figures, want: Figures) -> bool:
    return (
        got.end == want.end
        and got.count == want.count
        and got.min == want.min
        and got.max == want.max
        and math.isclose(got.sum, want.sum, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    )


def check_windows(
    records: Iterable[tuple[bytes | None, bytes | None]],
    expected: dict[tuple[str, int], Figures],
    parse: Callable[[bytes | None, bytes | None], Parsed],
) -> dict[str, object]:
    """Exactly the expected windows, each once, with the expected figures."""
    seen: Counter[tuple[str, int]] = Counter()
    mismatched = 0
    examples: list[str] = []
    unparsable = 0
    for key, value in records:
        try:
            slot, figures = parse(key, value)
        except (orjson.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
            unparsable += 1
            continue
        seen[slot] += 1
        want = expected.get(slot)
        if want is not None and not _same(figures, want):
            mismatched += 1
            if len(examples) < 5:
                examples.append(f"{slot}: got {figures}, want {want}")
    missing = [slot for slot in expected if slot not in seen]
    unexpected = [slot for slot in seen if slot not in expected]
    duplicates = sum(n - 1 for n in seen.values() if n > 1)
    ok = not (missing or unexpected or duplicates or mismatched or unparsable)
    return {
        "ok": ok,
        "expected_windows": len(expected),
        "received": sum(seen.values()),
        "missing": len(missing),
        "unexpected": len(unexpected),
        "duplicates": duplicates,
        "mismatched": mismatched,
        "unparsable": unparsable,
        "examples": examples
        + [f"missing {s}" for s in missing[:3]]
        + [f"unexpected {s}" for s in unexpected[:3]],
    }


def check_alerts(
    records: Iterable[tuple[bytes | None, bytes | None]],
    expected: set[tuple[str, int, float]],
    borderline: set[tuple[str, int, float]],
) -> dict[str, object]:
    """The alerts are exactly the oracle's (readings on the threshold are not judged)."""
    seen: Counter[tuple[str, int, float]] = Counter()
    for _key, value in records:
        record = orjson.loads(value or b"null")
        seen[(record["sensor_id"], record["ts"], record["value"])] += 1
    got = set(seen) - borderline
    missing = expected - got
    unexpected = got - expected
    duplicates = sum(n - 1 for n in seen.values() if n > 1)
    return {
        "ok": not (missing or unexpected or duplicates),
        "expected_alerts": len(expected),
        "borderline_not_judged": len(borderline),
        "received": sum(seen.values()),
        "missing": len(missing),
        "unexpected": len(unexpected),
        "duplicates": duplicates,
        "examples": [f"missing {a}" for a in sorted(missing)[:3]]
        + [f"unexpected {a}" for a in sorted(unexpected)[:3]],
    }
