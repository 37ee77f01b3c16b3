"""The record source of each dataset, so the producer loop and the CLI stay dataset-agnostic."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from faustapp.generator.clicks import CLICK_BAD_KINDS, click_records
from faustapp.generator.config import CLICKS, LOGS, PRODUCTS, SENSORS, TRADES, GeneratorConfig
from faustapp.generator.logs import LOG_BAD_KINDS, log_records
from faustapp.generator.products import PRODUCT_BAD_KINDS, product_records
from faustapp.generator.records import BAD_KINDS, GeneratedRecord, sensor_records
from faustapp.generator.trades import TRADE_BAD_KINDS, trade_records

RECORD_SOURCES: dict[str, Callable[[GeneratorConfig], Iterator[GeneratedRecord]]] = {
    SENSORS: sensor_records,
    TRADES: trade_records,
    LOGS: log_records,
    CLICKS: click_records,
    PRODUCTS: product_records,
}

BAD_KINDS_BY_DATASET: dict[str, tuple[str, ...]] = {
    SENSORS: BAD_KINDS,
    TRADES: TRADE_BAD_KINDS,
    LOGS: LOG_BAD_KINDS,
    CLICKS: CLICK_BAD_KINDS,
    PRODUCTS: PRODUCT_BAD_KINDS,
}


def records_for(config: GeneratorConfig) -> Iterator[GeneratedRecord]:
    """The records of one run of ``config.dataset``."""
    return RECORD_SOURCES[config.dataset](config)
