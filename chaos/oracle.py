"""Expected outputs computed from the readings actually in the input topic, and the comparison of
what the workers emitted with them: lost, duplicated, wrong, repeats, with evidence."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

import orjson

from faustapp.tables.sketches import Quantiles

from support.sensors import (
    MINUTE,
    Reading,
    assert_same_figures,
    expected_windows,
    partition_of,
    rank_within,
)

ALERT_WINDOW_MS = 5 * MINUTE
ALERT_Z = 4.0  # faustapp.agents.sensors.ALERT_Z (importing it would start a Faust app)
ALERT_MIN_READINGS = 20
EXAMPLES = 12  # evidence kept per kind of problem and output


@dataclass
class OutputCheck:
    """Comparison of one output topic with its oracle."""

    topic: str
    expected: int = 0
    records: int = 0
    lost: int = 0  # expected, never emitted
    duplicated: int = 0  # expected and emitted more than once
    wrong: int = 0  # emitted with figures that differ from the oracle, or not expected at all
    unexpected: int = 0  # part of ``wrong``: a result the oracle does not have
    repeats: int = 0  # records beyond the first of each result
    examples: dict[str, list] = field(default_factory=lambda: defaultdict(list))

    def note(self, kind: str, item: dict) -> None:
        """Keep a few examples of each kind of problem."""
        if len(self.examples[kind]) < EXAMPLES:
            self.examples[kind].append(item)

    def as_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "examples"}
        out["examples"] = {kind: list(items) for kind, items in self.examples.items() if items}
        return out


def decode_readings(values: Iterable[bytes | None]) -> list[Reading]:
    """Readings from raw ``sensor-readings`` values (as read back from the topic)."""
    out = []
    for raw in values:
        if raw is None:
            continue
        doc = orjson.loads(raw)
        out.append(Reading(doc["sensor_id"], int(doc["ts"]), float(doc["value"])))
    return out


def expected_alerts(readings: Iterable[Reading]) -> dict[tuple[str, int, float], dict]:
    """Alerts of the ``sensor-alerts`` rule, for large inputs.

    Same rule as ``support.sensors.expected_alerts`` (value more than 4 population stddev from the
    mean of its sensor's readings in ``[ts - 5 min, ts]``, at least 20 readings), but a running-sum
    pre-filter keeps it linear; candidates are then computed exactly with ``math.fsum``.
    """
    by_sensor: dict[str, list[Reading]] = defaultdict(list)
    for r in readings:
        by_sensor[r.sensor_id].append(r)
    alerts: dict[tuple[str, int, float], dict] = {}
    for sensor, items in by_sensor.items():
        items.sort(key=lambda r: (r.ts, r.value))
        times = [r.ts for r in items]
        values = [r.value for r in items]
        lo, s1, s2 = 0, 0.0, 0.0
        hi = 0
        for i, r in enumerate(items):
            # Window [ts - size, ts], inclusive: every reading with the same ts is in it.
            while hi < len(items) and times[hi] <= r.ts:
                s1 += values[hi]
                s2 += values[hi] * values[hi]
                hi += 1
            while times[lo] < r.ts - ALERT_WINDOW_MS:
                s1 -= values[lo]
                s2 -= values[lo] * values[lo]
                lo += 1
            n = hi - lo
            if n < ALERT_MIN_READINGS:
                continue
            mean = s1 / n
            var = max(s2 / n - mean * mean, 0.0)
            # Generous pre-filter: running sums drift a little; exact figures below decide.
            if var > 0 and abs(r.value - mean) <= 0.8 * ALERT_Z * math.sqrt(var):
                continue
            window = values[lo:hi]
            mean = math.fsum(window) / n
            sd = math.sqrt(math.fsum((v - mean) ** 2 for v in window) / n)
            if sd > 0 and abs(r.value - mean) / sd > ALERT_Z:
                alerts[(sensor, r.ts, r.value)] = {
                    "count": n,
                    "mean": mean,
                    "stddev": sd,
                    "zscore": (r.value - mean) / sd,
                    "index": i,
                }
    return alerts


def _figure_error(got: dict, want: dict) -> str | None:
    """None if ``got`` has the oracle's figures, else what differs."""
    try:
        assert_same_figures(got, want)
    except (AssertionError, KeyError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _where(records: list[dict]) -> list[list[int]]:
    """(output partition, offset) of each record: where to look in the topic."""
    return [[r["_partition"], r["_offset"]] for r in records]


def check_windows(
    topic: str,
    got: list[dict],
    want: dict[tuple, dict],
    partitions: int,
    *,
    quantiles: bool = False,
) -> OutputCheck:
    """Compare window results keyed by (sensor, window_start) with the oracle."""
    check = OutputCheck(topic, expected=len(want), records=len(got))
    error = Quantiles().rank_error
    by_key: dict[tuple, list[dict]] = defaultdict(list)
    for r in got:
        by_key[(r.get("sensor_id"), r.get("window_start"))].append(r)
    for key, records in sorted(by_key.items()):
        sensor = key[0]
        info = {
            "sensor_id": sensor,
            "window_start": key[1],
            "input_partition": partition_of(sensor, partitions) if sensor else None,
            "emitted_at": _where(records),
        }
        if len(records) > 1:
            check.duplicated += 1
            check.repeats += len(records) - 1
            same = len({orjson.dumps(_public(r), option=orjson.OPT_SORT_KEYS) for r in records})
            check.note("duplicated", {**info, "identical_copies": same == 1})
        expected = want.get(key)
        if expected is None:
            check.unexpected += 1
            check.wrong += 1
            check.note("wrong", {**info, "problem": "not expected", "got": _public(records[0])})
            continue
        for r in records:
            problem = _figure_error(r, expected)
            if problem is None and quantiles:
                for name, rank in (("p50", 0.5), ("p95", 0.95)):
                    if not rank_within(expected["_values"], r.get(name, math.nan), rank, error):
                        problem = f"{name}={r.get(name)} not within rank error {error:.4f}"
            if problem:
                check.wrong += 1
                check.note(
                    "wrong",
                    {
                        **info,
                        "problem": problem,
                        "at": [r["_partition"], r["_offset"]],
                        "got_count": r.get("count"),
                        "want_count": expected["count"],
                    },
                )
                break
    for key in sorted(set(want) - set(by_key)):
        check.lost += 1
        check.note(
            "lost",
            {
                "sensor_id": key[0],
                "window_start": key[1],
                "input_partition": partition_of(key[0], partitions),
                "count": want[key]["count"],
            },
        )
    return check


def check_alerts(got: list[dict], want: dict[tuple, dict], partitions: int) -> OutputCheck:
    """Compare alerts keyed by (sensor, ts, value) with the oracle."""
    check = OutputCheck("sensor-alerts", expected=len(want), records=len(got))
    by_key: dict[tuple, list[dict]] = defaultdict(list)
    for r in got:
        by_key[(r.get("sensor_id"), r.get("ts"), r.get("value"))].append(r)
    for key, records in sorted(by_key.items()):
        info = {
            "sensor_id": key[0],
            "ts": key[1],
            "input_partition": partition_of(key[0], partitions) if key[0] else None,
            "emitted_at": _where(records),
        }
        if len(records) > 1:
            check.duplicated += 1
            check.repeats += len(records) - 1
            check.note("duplicated", info)
        expected = want.get(key)
        if expected is None:
            check.unexpected += 1
            check.wrong += 1
            check.note("wrong", {**info, "problem": "not expected", "got": _public(records[0])})
            continue
        for r in records:
            if r.get("count") != expected["count"] or not math.isclose(
                r.get("zscore", math.nan), expected["zscore"], rel_tol=1e-6, abs_tol=1e-6
            ):
                check.wrong += 1
                check.note("wrong", {**info, "got": _public(r), "want": expected})
                break
    for key in sorted(set(want) - set(by_key)):
        check.lost += 1
        check.note(
            "lost",
            {
                "sensor_id": key[0],
                "ts": key[1],
                "input_partition": partition_of(key[0], partitions),
            },
        )
    return check


def _public(record: dict) -> dict:
    """A record without the reader's bookkeeping fields."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


def expected_outputs(readings: list[Reading]) -> dict[str, dict]:
    """Oracle of every compared output topic (unprefixed name -> expected results)."""
    return {
        "sensor-stats-1m": expected_windows(readings),
        "sensor-stats-5m": expected_windows(readings, size_ms=5 * MINUTE, step_ms=MINUTE),
        "sensor-alerts": expected_alerts(readings),
    }


def input_anomalies(intended: list[Reading], stored: list[Reading]) -> dict:
    """Readings the producer meant to write vs those in the topic (the oracle uses the latter)."""
    want: dict[Reading, int] = defaultdict(int)
    for r in intended:
        want[r] += 1
    have: dict[Reading, int] = defaultdict(int)
    for r in stored:
        have[r] += 1
    missing = sum(max(0, n - have.get(r, 0)) for r, n in want.items())
    extra = sum(max(0, n - want.get(r, 0)) for r, n in have.items())
    return {"intended": len(intended), "in_topic": len(stored), "missing": missing, "extra": extra}
