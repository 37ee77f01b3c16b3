"""Synthetic IoT sensor readings for demos, tests and benchmarks of the stream pipeline.

The pure core (:func:`sensor_records`) decides every record from a seed; the async producer
(:func:`produce`) only paces and delivers them, so the data can be checked without Kafka.
"""

from faustapp.generator.config import UNPACED_INTERVAL_MS, GeneratorConfig, config_problems
from faustapp.generator.producer import (
    ProduceReport,
    TokenBucket,
    batch_size_for,
    ensure_topic,
    format_report,
    produce,
)
from faustapp.generator.records import BAD_KINDS, VALID, GeneratedRecord, sensor_records

__all__ = [
    "BAD_KINDS",
    "UNPACED_INTERVAL_MS",
    "VALID",
    "GeneratedRecord",
    "GeneratorConfig",
    "ProduceReport",
    "TokenBucket",
    "batch_size_for",
    "config_problems",
    "ensure_topic",
    "format_report",
    "produce",
    "sensor_records",
]
