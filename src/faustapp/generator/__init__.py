"""Synthetic data for demos, tests and benchmarks of the stream pipeline.

Five datasets: IoT sensor readings, trades, application log lines, shop click events and the
product catalogue. For each, a pure core (:func:`sensor_records`, :func:`trade_records`,
:func:`log_records`, :func:`click_records`, :func:`product_records`) decides every record from a
seed; the async producer (:func:`produce`) only paces and delivers them, so the data can be
checked without Kafka.
"""

from faustapp.generator.clicks import CLICK_BAD_KINDS, CLICK_SCHEMA, click_records
from faustapp.generator.config import (
    APP_LOGS_TOPIC,
    CLICKS,
    CLICKS_TOPIC,
    DATASETS,
    LOGS,
    PRODUCTS,
    PRODUCTS_TOPIC,
    SENSORS,
    TRADES,
    TRADES_TOPIC,
    UNPACED_INTERVAL_MS,
    Dataset,
    GeneratorConfig,
    config_problems,
)
from faustapp.generator.datasets import BAD_KINDS_BY_DATASET, records_for
from faustapp.generator.logs import LOG_BAD_KINDS, LOG_SCHEMA, log_records
from faustapp.generator.producer import (
    ProduceReport,
    TokenBucket,
    batch_size_for,
    ensure_topic,
    format_report,
    produce,
)
from faustapp.generator.products import (
    PRODUCT_BAD_KINDS,
    PRODUCT_SCHEMA,
    catalogue_product,
    product_records,
)
from faustapp.generator.records import BAD_KINDS, VALID, GeneratedRecord, sensor_records
from faustapp.generator.trades import TRADE_BAD_KINDS, TRADE_SCHEMA, trade_records

__all__ = [
    "APP_LOGS_TOPIC",
    "BAD_KINDS",
    "BAD_KINDS_BY_DATASET",
    "CLICKS",
    "CLICKS_TOPIC",
    "CLICK_BAD_KINDS",
    "CLICK_SCHEMA",
    "DATASETS",
    "LOGS",
    "LOG_BAD_KINDS",
    "LOG_SCHEMA",
    "PRODUCTS",
    "PRODUCTS_TOPIC",
    "PRODUCT_BAD_KINDS",
    "PRODUCT_SCHEMA",
    "SENSORS",
    "TRADES",
    "TRADES_TOPIC",
    "TRADE_BAD_KINDS",
    "TRADE_SCHEMA",
    "UNPACED_INTERVAL_MS",
    "VALID",
    "Dataset",
    "GeneratedRecord",
    "GeneratorConfig",
    "ProduceReport",
    "TokenBucket",
    "batch_size_for",
    "catalogue_product",
    "click_records",
    "config_problems",
    "ensure_topic",
    "format_report",
    "log_records",
    "produce",
    "product_records",
    "records_for",
    "sensor_records",
    "trade_records",
]
