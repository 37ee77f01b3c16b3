"""What faustapp's trade pipelines must produce, computed independently of faustapp's engine.

Given the records of the ``trades`` topic as they sit in the log (key, value, partition, offset),
this module decides by brute force which records are rejected, replays every partition in offset
order to know its stream time before each event, decides which events are late for which
pipeline, and computes the final ``trade-candles-1m`` windows and ``trade-alerts`` from plain lists
(``math.fsum`` sums). Nothing is imported from ``faustapp``.

Contract modelled (all of it from the written contract, none from the implementation):

* stream time of a partition = largest event time of the valid events it has processed (-1 before
  the first); a window ``[start, end)`` is final once stream time >= end + grace;
* an event is late for a pipeline when every window of that pipeline it belongs to is already final
  at the stream time before it; a late event is counted nowhere in that pipeline and is recorded
  once on ``faustapp-late`` for it;
* a result is emitted once its window is final at the partition's last stream time;
* ``trade-alerts`` uses, for every trade at ``t``, its symbol's trades with ts in ``[t - 60 s, t]``
  (both bounds, equal timestamps included whatever their order in the log).

The shared pieces (records as logged, validation of ids, times and numbers, the per-partition
replay, late records) are used by :mod:`support.logs_oracle` too.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

MINUTE = 60_000
MAX_ID_LENGTH = 256
MAX_ABS_NUMBER = 1e15
MAX_TS_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_CONTROL_OR_SLASH = re.compile(r"[\x00-\x1f\x7f-\x9f/]")

TRADES_GROUP = "trades"
TRADES_TOPIC = "trades"
CANDLES = "trade-candles-1m"
ALERTS = "trade-alerts"
ALERT_WINDOW_MS = 60_000
ALERT_DEVIATION = 0.03
ALERT_MIN_TRADES = 5
SIDES = ("buy", "sell")

CANDLE_FIELDS = frozenset(
    {
        "symbol",
        "window_start",
        "window_end",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "trades",
        "notional",
        "vwap",
        "buy_volume",
        "sell_volume",
    }
)
TRADE_ALERT_FIELDS = frozenset(
    {
        "symbol",
        "ts",
        "price",
        "qty",
        "window_start",
        "window_end",
        "trades",
        "vwap",
        "deviation",
        "rule",
    }
)
LATE_FIELDS = frozenset(
    {
        "pipeline",
        "source_topic",
        "source_partition",
        "source_offset",
        "ts",
        "window_start",
        "window_end",
        "stream_time",
        "reason",
    }
)
DLQ_FIELDS = frozenset(
    {"pipeline", "source_topic", "source_partition", "source_offset", "error", "key_b64"}
)
REL_TOL = 1e-9


# --------------------------------------------------------------------------------------------
# Shared by both inputs: records as logged, validation, per-partition replay, late records


@dataclass(frozen=True)
class Produced:
    """One record of an input topic as the log holds it."""

    key: bytes | None
    value: bytes | None
    partition: int
    offset: int


class Reject(ValueError):
    """A record that breaks a rule; ``field`` names the offending field (None: the whole value)."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Rejected:
    """A record the pipelines must send to ``faustapp-dlq``."""

    record: Produced
    field: str | None
    reason: str


@dataclass(frozen=True)
class Seen:
    """A valid event as its partition processes it."""

    record: Produced
    event: Any
    key: str
    ts: int
    stream_before: int  # the partition's stream time before this event, -1 before the first


@dataclass(frozen=True)
class Late:
    """One record ``faustapp-late`` must hold."""

    pipeline: str
    key: str
    ts: int
    partition: int
    offset: int
    stream_time: int
    window_start: int
    window_end: int

    @property
    def slot(self) -> tuple[str, int, int]:
        """What identifies it: the pipeline and the source record."""
        return (self.pipeline, self.partition, self.offset)


@dataclass
class Replay:
    """Every record of an input classified, partitions replayed in offset order."""

    seen: list[Seen]
    rejected: list[Rejected]
    stream_time: dict[int, int]  # last stream time of every partition that had a valid event

    def final_stream(self, partition: int) -> int:
        return self.stream_time.get(partition, -1)


def load_object(raw: bytes | None) -> dict[str, Any]:
    """The JSON object a value holds, or :class:`Reject`."""
    if not raw:
        raise Reject(None, "empty value")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Reject(None, "not valid JSON") from None
    if not isinstance(data, dict):
        raise Reject(None, f"expected a JSON object, got {type(data).__name__}")
    return data


def present(data: dict[str, Any], name: str) -> bool:
    """Whether an optional field is there (sent as null counts as absent)."""
    return data.get(name) is not None


def identifier(data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    """A key or id: a non-empty string of at most 256 characters, no control characters, no '/'."""
    if not present(data, name):
        if required:
            raise Reject(name, f"missing field '{name}'")
        return None
    raw = data[name]
    if not isinstance(raw, str):
        raise Reject(name, f"field '{name}' must be a string")
    if not 1 <= len(raw) <= MAX_ID_LENGTH or _CONTROL_OR_SLASH.search(raw):
        raise Reject(name, f"field '{name}' is not a valid id")
    return raw


def number(
    data: dict[str, Any],
    name: str,
    *,
    required: bool = True,
    minimum: float | None = None,
    strictly_above: bool = False,
) -> float | None:
    """A finite JSON number within +-1e15, optionally bounded below."""
    if not present(data, name):
        if required:
            raise Reject(name, f"missing field '{name}'")
        return None
    raw = data[name]
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):  # noqa: UP038
        raise Reject(name, f"field '{name}' must be a number")
    value = float(raw)
    if not math.isfinite(value) or abs(value) > MAX_ABS_NUMBER:
        raise Reject(name, f"field '{name}' out of range")
    if minimum is not None and (value < minimum or (strictly_above and value == minimum)):
        raise Reject(name, f"field '{name}' out of range")
    return value


def iso_to_ms(text: str) -> int:
    """Epoch ms of an ISO-8601 time; no zone means UTC."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Reject("ts", "field 'ts' is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def ms_to_iso(ms: int) -> str:
    """The ISO-8601 form (UTC, millisecond precision, ``Z``) of an epoch-ms time."""
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_time(data: dict[str, Any]) -> int:
    """``ts``: epoch milliseconds (whole) or an ISO-8601 string, between 1970 and 9999."""
    if not present(data, "ts"):
        raise Reject("ts", "missing field 'ts'")
    raw = data["ts"]
    if isinstance(raw, bool):
        raise Reject("ts", "field 'ts' must be a time")
    if isinstance(raw, int):
        ts = raw
    elif isinstance(raw, float):
        if not math.isfinite(raw) or raw != int(raw):
            raise Reject("ts", "field 'ts' must be whole milliseconds")
        ts = int(raw)
    elif isinstance(raw, str):
        ts = iso_to_ms(raw)
    else:
        raise Reject("ts", "field 'ts' must be a time")
    if not 0 <= ts <= MAX_TS_MS:
        raise Reject("ts", "field 'ts' out of range")
    return ts


def replay(
    records: Iterable[Produced],
    decode: Callable[[bytes | None], Any],
    key_of: Callable[[Any], str],
) -> Replay:
    """Classify every record and replay each partition in offset order.

    Only records keyed by their own key field are modelled: a record keyed otherwise would be
    forwarded to another partition and processed there at an offset the log does not say yet.
    """
    ordered = sorted(records, key=lambda r: (r.partition, r.offset))
    slots = [(r.partition, r.offset) for r in ordered]
    if len(set(slots)) != len(slots):
        raise ValueError("two records at the same partition and offset")
    seen: list[Seen] = []
    rejected: list[Rejected] = []
    stream: dict[int, int] = {}
    for record in ordered:
        try:
            event = decode(record.value)
        except Reject as exc:
            rejected.append(Rejected(record, exc.field, exc.reason))
            continue
        key = key_of(event)
        if record.key != key.encode():
            raise ValueError(
                f"record at {record.partition}/{record.offset} is keyed {record.key!r}, not by "
                f"its value's key {key!r}: forwarding is not modelled"
            )
        before = stream.get(record.partition, -1)
        seen.append(Seen(record, event, key, event.ts, before))
        stream[record.partition] = max(before, event.ts)
    return Replay(seen, rejected, stream)


def tumbling_start(ts: int, size: int = MINUTE) -> int:
    return ts - ts % size


def close(got: float | None, want: float | None, abs_tol: float = 1e-12) -> bool:
    """Equal up to floating-point rounding (both None counts as equal)."""
    if got is None or want is None:
        return got is None and want is None
    return math.isclose(got, want, rel_tol=REL_TOL, abs_tol=abs_tol)


def assert_late_record(got: dict, want: Late, key_field: str, source_topic: str) -> None:
    """A ``faustapp-late`` record against the expected one (the contract's fields)."""
    missing = (LATE_FIELDS | {key_field}) - set(got)
    assert not missing, (missing, got)
    assert got["pipeline"] == want.pipeline, (got, want)
    assert got["source_topic"] == source_topic, (got, want)
    assert (got["source_partition"], got["source_offset"]) == (want.partition, want.offset)
    assert got[key_field] == want.key and got["ts"] == want.ts, (got, want)
    assert (got["window_start"], got["window_end"]) == (want.window_start, want.window_end), (
        got,
        want,
    )
    assert got["stream_time"] == want.stream_time, (got, want)
    assert isinstance(got["reason"], str) and got["reason"], got


# --------------------------------------------------------------------------------------------
# Trades


@dataclass(frozen=True)
class Trade:
    """One valid ``trades`` value."""

    symbol: str
    ts: int
    price: float
    qty: float
    side: str | None

    def encode(self, *, iso_ts: bool = False, null_side: bool = False) -> bytes:
        """The JSON value; ``ts`` as ISO-8601 and an absent ``side`` as null when asked."""
        value: dict[str, Any] = {
            "symbol": self.symbol,
            "ts": ms_to_iso(self.ts) if iso_ts else self.ts,
            "price": self.price,
            "qty": self.qty,
        }
        if self.side is not None or null_side:
            value["side"] = self.side
        return orjson.dumps(value)


def decode_trade(raw: bytes | None) -> Trade:
    """A ``trades`` value by the contract, or :class:`Reject` naming the field."""
    data = load_object(raw)
    symbol = identifier(data, "symbol")
    ts = event_time(data)
    price = number(data, "price", minimum=0.0, strictly_above=True)
    qty = number(data, "qty", minimum=0.0, strictly_above=True)
    side = data.get("side")
    if side is not None and side not in SIDES:
        raise Reject("side", "field 'side' must be 'buy' or 'sell'")
    return Trade(symbol, ts, price, qty, side)  # type: ignore[arg-type]


@dataclass(frozen=True)
class AlertCheck:
    """A trade whose sliding window was evaluated (>= 5 trades), alerting or not."""

    symbol: str
    ts: int
    offset: int
    deviation: float

    @property
    def margin(self) -> float:
        """How far |deviation| lies from the threshold (0: exactly on it)."""
        return abs(abs(self.deviation) - ALERT_DEVIATION)


@dataclass
class TradesExpected:
    """Everything the trade pipelines must write for one set of logged records."""

    replay: Replay
    candles: dict[tuple[str, int], dict] = field(default_factory=dict)
    alerts: list[dict] = field(default_factory=list)
    checks: list[AlertCheck] = field(default_factory=list)
    late: list[Late] = field(default_factory=list)

    @property
    def rejected(self) -> list[Rejected]:
        return self.replay.rejected

    @property
    def dlq_count(self) -> int:
        return len(self.replay.rejected)

    def late_for(self, pipeline: str) -> list[Late]:
        return [late for late in self.late if late.pipeline == pipeline]


def candle(symbol: str, start: int, trades: list[tuple[int, int, Trade]]) -> dict:
    """The ``trade-candles-1m`` record of one window; ``trades`` as (ts, offset, trade)."""
    by_time = sorted(trades, key=lambda t: (t[0], t[1]))
    prices = [t.price for _, _, t in trades]
    volume = math.fsum(t.qty for _, _, t in trades)
    notional = math.fsum(t.price * t.qty for _, _, t in trades)
    return {
        "symbol": symbol,
        "window_start": start,
        "window_end": start + MINUTE,
        "open": by_time[0][2].price,
        "high": max(prices),
        "low": min(prices),
        "close": by_time[-1][2].price,
        "volume": volume,
        "trades": len(trades),
        "notional": notional,
        "vwap": notional / volume,
        "buy_volume": math.fsum(t.qty for _, _, t in trades if t.side == "buy"),
        "sell_volume": math.fsum(t.qty for _, _, t in trades if t.side == "sell"),
    }


def expected_trades(records: Iterable[Produced], grace_ms: int) -> TradesExpected:
    """Candles, alerts, late records and dead letters of ``trades`` records as logged."""
    run = replay(records, decode_trade, lambda t: t.symbol)
    out = TradesExpected(run)
    windows: dict[tuple[str, int], list[tuple[int, int, Trade]]] = defaultdict(list)
    counted: dict[str, list[tuple[int, int, int, Trade]]] = defaultdict(list)  # for alerts
    topic_partition: dict[str, int] = {}
    for seen in run.seen:
        trade: Trade = seen.event
        partition, offset = seen.record.partition, seen.record.offset
        topic_partition[trade.symbol] = partition
        start = tumbling_start(trade.ts)
        if seen.stream_before >= start + MINUTE + grace_ms:
            window = (start, start + MINUTE)
            out.late.append(
                Late(
                    CANDLES, trade.symbol, trade.ts, partition, offset, seen.stream_before, *window
                )
            )
        else:
            windows[(trade.symbol, start)].append((trade.ts, offset, trade))
        if seen.stream_before >= trade.ts + grace_ms:
            window = (trade.ts - ALERT_WINDOW_MS, trade.ts)
            out.late.append(
                Late(ALERTS, trade.symbol, trade.ts, partition, offset, seen.stream_before, *window)
            )
        else:
            counted[trade.symbol].append((trade.ts, partition, offset, trade))

    for (symbol, start), trades in windows.items():
        if run.final_stream(topic_partition[symbol]) >= start + MINUTE + grace_ms:
            out.candles[(symbol, start)] = candle(symbol, start, trades)

    for symbol, trades in counted.items():
        for ts, partition, offset, trade in trades:
            if run.final_stream(partition) < ts + grace_ms:
                continue  # its window is not final yet: nothing emitted
            window = [t for t_ts, _, _, t in trades if ts - ALERT_WINDOW_MS <= t_ts <= ts]
            if len(window) < ALERT_MIN_TRADES:
                continue
            volume = math.fsum(t.qty for t in window)
            vwap = math.fsum(t.price * t.qty for t in window) / volume
            deviation = (trade.price - vwap) / vwap
            out.checks.append(AlertCheck(symbol, ts, offset, deviation))
            if abs(deviation) > ALERT_DEVIATION:
                out.alerts.append(
                    {
                        "symbol": symbol,
                        "ts": ts,
                        "price": trade.price,
                        "qty": trade.qty,
                        "window_start": ts - ALERT_WINDOW_MS,
                        "window_end": ts,
                        "trades": len(window),
                        "vwap": vwap,
                        "deviation": deviation,
                    }
                )
    return out


def assert_same_candle(got: dict, want: dict) -> None:
    """Exact for prices, counts and bounds; rounding tolerance for sums and the VWAP."""
    assert set(got) == CANDLE_FIELDS, (sorted(set(got) ^ CANDLE_FIELDS), got)
    for name in ("symbol", "window_start", "window_end", "open", "high", "low", "close", "trades"):
        assert got[name] == want[name], (name, got, want)
    for name in ("volume", "notional", "vwap", "buy_volume", "sell_volume"):
        assert close(got[name], want[name]), (name, got, want)


def alert_identity(alert: dict) -> tuple:
    return (alert["symbol"], alert["ts"], alert["price"], alert["qty"])


def assert_same_trade_alert(got: dict, want: dict) -> None:
    assert set(got) == TRADE_ALERT_FIELDS, (sorted(set(got) ^ TRADE_ALERT_FIELDS), got)
    for name in ("symbol", "ts", "price", "qty", "window_start", "window_end", "trades"):
        assert got[name] == want[name], (name, got, want)
    for name in ("vwap", "deviation"):
        assert close(got[name], want[name]), (name, got, want)
    assert isinstance(got["rule"], str) and got["rule"], got


def assert_same_trade_alerts(got: list[dict], want: list[dict]) -> None:
    """The same alerts, each as often as expected (trades are identified by their fields)."""
    got_sorted = sorted(got, key=lambda a: (alert_identity(a), a.get("trades", 0)))
    want_sorted = sorted(want, key=lambda a: (alert_identity(a), a["trades"]))
    assert [alert_identity(a) for a in got_sorted] == [alert_identity(a) for a in want_sorted]
    for g, w in zip(got_sorted, want_sorted, strict=True):
        assert_same_trade_alert(g, w)
