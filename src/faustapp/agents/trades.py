"""Finance on ``trades``: 1-minute OHLC candles with volume and VWAP, and VWAP deviation alerts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from faustapp.api import (
    MINUTE,
    Count,
    EventTime,
    First,
    Id,
    Last,
    Max,
    Min,
    Number,
    Record,
    Schema,
    Sum,
    sliding,
    source,
    tumbling,
)

TRADES = "trades"
ALERT_DEVIATION = 0.03
ALERT_MIN_TRADES = 5


class Trade(Record):
    """One trade: symbol, event time, price and quantity (fractions allowed), optional side."""

    symbol: Id
    ts: EventTime
    price: Annotated[float, Number(gt=0)]
    qty: Annotated[float, Number(gt=0)]
    side: Literal["buy", "sell"] | None = None


def notional(trade: Trade) -> float:
    """What the trade is worth: price times quantity."""
    return trade.price * trade.qty


def is_buy(trade: Trade) -> bool:
    """A trade on the buy side."""
    return trade.side == "buy"


def is_sell(trade: Trade) -> bool:
    """A trade on the sell side."""
    return trade.side == "sell"


def candle(result: dict[str, Any]) -> dict[str, Any]:
    """The candle in its published order, with the volume-weighted average price."""
    return {
        "symbol": result["symbol"],
        "window_start": result["window_start"],
        "window_end": result["window_end"],
        "open": result["open"],
        "high": result["high"],
        "low": result["low"],
        "close": result["close"],
        "volume": result["volume"],
        "trades": result["trades"],
        "notional": result["notional"],
        "vwap": result["notional"] / result["volume"],
        "buy_volume": result["buy_volume"],
        "sell_volume": result["sell_volume"],
    }


def deviation_alert(result: dict[str, Any]) -> dict[str, Any] | None:
    """An alert when a trade's price is more than 3% away from the VWAP of its minute."""
    if result["trades"] < ALERT_MIN_TRADES or not result["volume"]:
        return None
    vwap = result["notional"] / result["volume"]
    deviation = (result["price"] - vwap) / vwap
    if abs(deviation) <= ALERT_DEVIATION:
        return None
    return {
        "symbol": result["symbol"],
        "ts": result["ts"],
        "price": result["price"],
        "qty": result["qty"],
        "window_start": result["window_start"],
        "window_end": result["window_end"],
        "trades": result["trades"],
        "vwap": vwap,
        "deviation": deviation,
        "rule": f"|price - vwap| / vwap > {ALERT_DEVIATION:.0%}, >= {ALERT_MIN_TRADES} trades "
        "in [ts - 60 s, ts]",
    }


trades = source("trades", topic=TRADES, schema=Schema(Trade, key="symbol"))

candles = trades.window(
    "trade-candles-1m",
    tumbling(MINUTE),
    description="open, high, low, close, volume, notional and VWAP per symbol and minute",
    open=First("price"),
    high=Max("price"),
    low=Min("price"),
    close=Last("price"),
    volume=Sum("qty"),
    trades=Count(),
    notional=Sum(notional),
    buy_volume=Sum("qty", where=is_buy),
    sell_volume=Sum("qty", where=is_sell),
    select=candle,
)
alerts = trades.window(
    "trade-alerts",
    sliding(MINUTE, carry=("price", "qty")),
    description="trades more than 3% from the VWAP of their symbol's last minute",
    trades=Count(),
    volume=Sum("qty"),
    notional=Sum(notional),
    select=deviation_alert,
)
