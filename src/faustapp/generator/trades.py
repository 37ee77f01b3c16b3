"""Pure, seedable source of trades, kept free of I/O so it can be tested exactly.

Each symbol's price is a mean-reverting random walk in event time with occasional jumps of
4-10 %, so a price sometimes moves more than 3 % away from its recent volume-weighted average.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

from faustapp.generator.config import GeneratorConfig
from faustapp.generator.records import GeneratedRecord
from faustapp.generator.schema import Popularity, Record, Schema, keyed_records, with_value

SIDES = ("buy", "sell")

#: Symbols of the first runs' keys: (symbol, opening price, traded in fractions).
NAMED_SYMBOLS: tuple[tuple[str, float, bool], ...] = (
    ("ACME", 101.25, False),
    ("GLOBEX", 48.10, False),
    ("BTC-USD", 64250.0, True),
    ("INITECH", 12.40, False),
    ("UMBRELLA", 230.0, False),
    ("ETH-USD", 3150.0, True),
    ("WAYNE", 412.0, False),
    ("STARK", 188.50, False),
    ("HOOLI", 95.20, False),
    ("SOYLENT", 7.85, False),
    ("TYRELL", 61.30, False),
    ("SOL-USD", 145.0, True),
    ("WONKA", 23.45, False),
    ("CYBERDYNE", 152.0, False),
    ("OSCORP", 39.90, False),
    ("MASSIVE", 3.12, False),
    ("VANDELAY", 18.75, False),
    ("DOGE-USD", 0.1623, True),
    ("PENNY", 0.42, False),
    ("GRINGOTTS", 980.0, False),
)

#: Pull of a price back to its opening level, per minute of event time.
REVERSION_PER_MIN = 0.01
#: Range of a symbol's volatility: standard deviation of the log price over one minute.
VOLATILITY_PER_SQRT_MIN = (0.001, 0.004)
#: Mean event time between two jumps of one symbol.
JUMP_EVERY_MIN = 30.0
#: Range of a jump's size, as a share of the price, up or down.
JUMP_SIZE = (0.04, 0.10)
#: Guard on the log deviation from the opening price (a factor of about 55 either way).
MAX_LOG_DEVIATION = 4.0
#: Median value (price x qty) of a trade, and the cap of its long tail.
MEDIAN_NOTIONAL = 5000.0
MAX_NOTIONAL = 5e7


def _non_positive_price(schema: Schema, rng: random.Random, record: Record) -> bytes:
    price = record["price"]
    assert isinstance(price, float)
    return with_value(record, "price", rng.choice((0, 0.0, -0.01, -price)))


def _non_positive_qty(schema: Schema, rng: random.Random, record: Record) -> bytes:
    qty = record["qty"]
    assert isinstance(qty, (int, float))
    return with_value(record, "qty", rng.choice((0, 0.0, -1, -qty)))


def _bad_side(schema: Schema, rng: random.Random, record: Record) -> bytes:
    side = rng.choice(("hold", "short", "", "bid", 1, True, ["buy"]))
    return with_value(record, "side", side)


TRADE_SCHEMA = Schema(
    id_field="symbol",
    required=("symbol", "ts", "price", "qty"),
    numbers=("price", "qty"),
    specific={
        "non_positive_price": _non_positive_price,
        "non_positive_qty": _non_positive_qty,
        "bad_side": _bad_side,
    },
)
#: Every way a generated trade can be malformed; each must be rejected by a correct consumer.
TRADE_BAD_KINDS: tuple[str, ...] = TRADE_SCHEMA.bad_kinds


class _Market:
    """Per-symbol price state, advanced by the event time elapsed since the symbol's last trade."""

    def __init__(self, symbols: int, start_ms: int, rng: random.Random) -> None:
        self._rng = rng
        self.ids: list[str] = []
        self.anchor: list[float] = []
        self.fractional: list[bool] = []
        for index in range(symbols):
            if index < len(NAMED_SYMBOLS):
                symbol, price, fractional = NAMED_SYMBOLS[index]
            else:
                symbol = f"SYM{index}"
                price = round(math.exp(rng.uniform(math.log(2.0), math.log(800.0))), 2)
                fractional = rng.random() < 0.1
            self.ids.append(symbol)
            self.anchor.append(price)
            self.fractional.append(fractional)
        self.volatility = [rng.uniform(*VOLATILITY_PER_SQRT_MIN) for _ in range(symbols)]
        self.deviation = [0.0] * symbols
        self.last_ms = [start_ms] * symbols
        self._popularity = Popularity(symbols, rng)

    def pick(self) -> int:
        return self._popularity.pick()

    def record(self, index: int, nominal_ts: int, ts: object) -> Record:
        rng = self._rng
        price = self._advance(index, nominal_ts)
        trade: Record = {"symbol": self.ids[index], "ts": ts, "price": price}
        trade["qty"] = self._quantity(index, price)
        draw = rng.random()
        if draw < 0.9:
            trade["side"] = rng.choice(SIDES)
        elif draw < 0.93:
            trade["side"] = None
        return trade

    def _advance(self, index: int, nominal_ts: int) -> float:
        """An Ornstein-Uhlenbeck step of the log price, exact for any gap, plus maybe a jump."""
        rng = self._rng
        minutes = (nominal_ts - self.last_ms[index]) / 60_000.0
        deviation = self.deviation[index]
        if minutes > 0:
            self.last_ms[index] = nominal_ts
            decay = math.exp(-REVERSION_PER_MIN * minutes)
            variance = -math.expm1(-2.0 * REVERSION_PER_MIN * minutes) / (2.0 * REVERSION_PER_MIN)
            deviation = deviation * decay + rng.gauss(0.0, self.volatility[index]) * math.sqrt(
                variance
            )
            if rng.random() < -math.expm1(-minutes / JUMP_EVERY_MIN):
                deviation += rng.choice((-1.0, 1.0)) * rng.uniform(*JUMP_SIZE)
            deviation = max(-MAX_LOG_DEVIATION, min(MAX_LOG_DEVIATION, deviation))
            self.deviation[index] = deviation
        price = self.anchor[index] * math.exp(deviation)
        digits = 2 if price >= 1.0 else 4
        return max(round(price, digits), 10.0**-digits)

    def _quantity(self, index: int, price: float) -> int | float:
        """Shares in whole numbers (often round lots), coins in fractions; about equal value."""
        rng = self._rng
        notional = min(rng.lognormvariate(math.log(MEDIAN_NOTIONAL), 1.3), MAX_NOTIONAL)
        if self.fractional[index]:
            return max(round(notional / price, 6), 1e-6)
        shares = max(1, round(notional / price))
        if shares >= 100 and rng.random() < 0.4:
            shares = round(shares, -2)
        return shares


def trade_records(config: GeneratorConfig) -> Iterator[GeneratedRecord]:
    """Yield the trades of one run; the same resolved config always yields the same records.

    Slots, disorder and malformed records follow
    :func:`~faustapp.generator.records.sensor_records`: a valid trade's ``ts`` lies in
    ``[nominal - disorder_ms, nominal]``, and each record is malformed with probability
    ``bad_ratio`` (kind picked uniformly from :data:`TRADE_BAD_KINDS`).

    A valid trade is ``{"symbol", "ts", "price", "qty"}`` plus ``"side"`` (``"buy"`` or
    ``"sell"``) most of the time, sometimes null or absent. ``ts`` is epoch ms, or now and then
    an ISO-8601 string. ``price > 0`` with cents (4 decimals below 1), ``qty > 0``: whole shares
    for stocks, fractions for coins. Keys are the symbol (``ACME``, ``GLOBEX``, ... then
    ``SYM20``, ...), busiest first.
    """
    config = config.resolved()
    assert config.start_ms is not None
    rng = random.Random(config.seed)
    market = _Market(config.keys, config.start_ms, rng)
    return keyed_records(config, TRADE_SCHEMA, market, rng)
