"""Options of a generator run (sensors, trades, logs, clicks or products), checked once so the core
can trust them."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from faustapp.topics import SENSOR_READINGS

#: Event-time spacing used by ``--rate 0`` when no ``--interval-ms`` is given: an unpaced
#: benchmark run then still spreads its readings over a predictable event-time span.
UNPACED_INTERVAL_MS = 1.0

SENSORS = "sensors"
TRADES = "trades"
LOGS = "logs"
#: Default topic of ``generate trades`` (before ``FAUSTAPP_TOPIC_PREFIX``), keyed by symbol.
TRADES_TOPIC = "trades"
#: Default topic of ``generate logs`` (before ``FAUSTAPP_TOPIC_PREFIX``), keyed by service.
APP_LOGS_TOPIC = "app-logs"
CLICKS = "clicks"
PRODUCTS = "products"
#: Default topic of ``generate clicks`` (before ``FAUSTAPP_TOPIC_PREFIX``), keyed by user id.
CLICKS_TOPIC = "clicks"
#: Default topic of ``generate products`` (before ``FAUSTAPP_TOPIC_PREFIX``), keyed by item id;
#: a compacted reference topic.
PRODUCTS_TOPIC = "products"
#: Items in the catalogue by default: ``sku-0`` .. ``sku-999``, shared by clicks and products.
DEFAULT_ITEMS = 1000


@dataclass(frozen=True)
class Dataset:
    """How one kind of generated data is named, keyed and routed by default."""

    name: str
    topic: str
    default_keys: int
    key_noun: str
    """What the keys are, in the plural: ``sensors``, ``symbols``, ``services``."""
    record_noun: str
    """What the records are, in the plural: ``readings``, ``trades``, ``log lines``."""
    record_singular: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    """Options whose default differs for this dataset (``rate``, ``count``, ...)."""
    topic_configs: Mapping[str, str] = field(default_factory=dict)
    """Topic configuration used only when the topic has to be created."""


DATASETS: dict[str, Dataset] = {
    dataset.name: dataset
    for dataset in (
        Dataset(SENSORS, SENSOR_READINGS, 500, "sensors", "readings", "reading"),
        Dataset(TRADES, TRADES_TOPIC, 20, "symbols", "trades", "trade"),
        Dataset(LOGS, APP_LOGS_TOPIC, 12, "services", "log lines", "log line"),
        Dataset(
            CLICKS, CLICKS_TOPIC, 50_000, "users", "click events", "click event", {"rate": 100.0}
        ),
        Dataset(
            PRODUCTS,
            PRODUCTS_TOPIC,
            DEFAULT_ITEMS,
            "items",
            "product records",
            "product record",
            {"rate": 100.0, "count": 2000, "disorder_ms": 0},
            {"cleanup.policy": "compact"},
        ),
    )
}


@dataclass(frozen=True)
class GeneratorConfig:
    """One generator run; frozen so the producer loop and the pure core read the same values."""

    topic: str = SENSOR_READINGS
    rate: float = 2000.0
    """Records per second of wall-clock time; ``0`` sends as fast as possible."""
    count: int = 100_000
    """Records to produce; ``0`` keeps going until stopped."""
    keys: int = 500
    """Distinct keys: sensor ids, trade symbols or log services, depending on ``dataset``."""
    disorder_ms: int = 3000
    """Upper bound on how far back in event time a record may be shuffled."""
    bad_ratio: float = 0.001
    """Probability that a record is deliberately malformed."""
    seed: int | None = None
    """``None`` draws a fresh seed (see :meth:`resolved`)."""
    start_ms: int | None = None
    """Nominal event time of the first record; ``None`` means now."""
    interval_ms: float | None = None
    """Nominal event-time step between consecutive records; ``None`` derives it from rate."""
    quiet: bool = False
    partitions: int = 4
    """Partition count used only when the topic has to be created."""
    replication_factor: int = 1
    """Replication factor used only when the topic has to be created."""
    min_insync_replicas: int | None = None
    """``min.insync.replicas`` of a topic this run creates; ``None``: the broker's default."""
    dataset: str = SENSORS
    """Which data to generate: a key of :data:`DATASETS`."""
    items: int = DEFAULT_ITEMS
    """Clicks only: items the clicks are about, ``sku-0`` .. ``sku-{items-1}`` (for products
    the items are the keys)."""
    delete_ratio: float = 0.01
    """Products only: probability that a record after the catalogue is a tombstone."""

    @classmethod
    def for_dataset(cls, dataset: str, **options: Any) -> GeneratorConfig:
        """A run of ``dataset`` with its default topic, key count and options unless given."""
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}, expected one of {sorted(DATASETS)}")
        defaults = DATASETS[dataset]
        options.setdefault("topic", defaults.topic)
        options.setdefault("keys", defaults.default_keys)
        for name, value in defaults.defaults.items():
            options.setdefault(name, value)
        return cls(dataset=dataset, **options)

    @property
    def info(self) -> Dataset:
        """Names and defaults of this run's dataset."""
        return DATASETS[self.dataset]

    def __post_init__(self) -> None:
        problems = config_problems(self)
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def effective_interval_ms(self) -> float:
        """Event time advances like the wall clock of a paced run, so windows close naturally."""
        if self.interval_ms is not None:
            return self.interval_ms
        if self.rate > 0:
            return 1000.0 / self.rate
        return UNPACED_INTERVAL_MS

    def resolved(self) -> GeneratorConfig:
        """Pin seed and start time so a run can be logged and replayed exactly."""
        seed = self.seed if self.seed is not None else random.SystemRandom().randrange(2**32)
        start_ms = self.start_ms if self.start_ms is not None else time.time_ns() // 1_000_000
        if seed == self.seed and start_ms == self.start_ms:
            return self
        return replace(self, seed=seed, start_ms=start_ms)


def config_problems(config: GeneratorConfig) -> list[str]:
    """Collect every bad option at once so a user fixes them in one go."""
    problems = []
    if not config.topic:
        problems.append("topic must not be empty")
    if not math.isfinite(config.rate) or config.rate < 0:
        problems.append(f"rate must be a finite number >= 0, got {config.rate}")
    if config.count < 0:
        problems.append(f"count must be >= 0, got {config.count}")
    if config.dataset not in DATASETS:
        problems.append(f"dataset must be one of {sorted(DATASETS)}, got {config.dataset!r}")
    if config.keys < 1:
        noun = DATASETS[config.dataset].key_noun if config.dataset in DATASETS else "keys"
        problems.append(f"{noun} must be >= 1, got {config.keys}")
    if config.disorder_ms < 0:
        problems.append(f"disorder-ms must be >= 0, got {config.disorder_ms}")
    if not 0.0 <= config.bad_ratio <= 1.0:
        problems.append(f"bad-ratio must be within [0, 1], got {config.bad_ratio}")
    if config.interval_ms is not None and (
        not math.isfinite(config.interval_ms) or config.interval_ms < 0
    ):
        problems.append(f"interval-ms must be a finite number >= 0, got {config.interval_ms}")
    if config.start_ms is not None and config.start_ms < 0:
        problems.append(f"start-ms must be >= 0, got {config.start_ms}")
    if config.partitions < 1:
        problems.append(f"partitions must be >= 1, got {config.partitions}")
    if config.items < 1:
        problems.append(f"items must be >= 1, got {config.items}")
    if not 0.0 <= config.delete_ratio <= 1.0:
        problems.append(f"delete-ratio must be within [0, 1], got {config.delete_ratio}")
    if config.replication_factor < 1:
        problems.append(f"replication-factor must be >= 1, got {config.replication_factor}")
    if config.min_insync_replicas is not None and not (
        1 <= config.min_insync_replicas <= config.replication_factor
    ):
        problems.append(
            f"min-insync-replicas must be within [1, replication-factor="
            f"{config.replication_factor}], got {config.min_insync_replicas}"
        )
    return problems
