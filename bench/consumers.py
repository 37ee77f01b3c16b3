"""What the benchmark runs and what each run must output: the consumers, the expected
figures and the context every run shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.clicks_data import CLICKS, ClicksDataset
from bench.clicks_expect import expected_clicks
from bench.data import MINUTE, Dataset, Figures
from bench.uses_data import LOGS, TRADES, UseDataset
from bench.uses_expect import expected_for
from faustapp.settings import DEFAULT_PIPELINES

SENSORS = "sensors"

# faustapp's own constants for the sensor pipelines (src/faustapp/agents/sensors.py).
ALERT_Z = 4.0
ALERT_MIN_READINGS = 20
SESSION_GAP_MS = MINUTE


@dataclass(frozen=True)
class Consumer:
    """One row of the table."""

    id: str
    label: str
    kind: str  # raw | faustapp | quix | bytewax | pathway
    pipeline: str | None = None
    guarantee: str = "at_least_once"
    dataset: str = SENSORS
    """Which pre-filled topic it reads, and faustapp's source (the ``pipeline`` label of what is
    counted once per input record): sensors, trades, logs or clicks."""
    pipelines: tuple[str, ...] = ()
    """A faustapp deployment of several pipelines in one worker (``pipeline`` is then None): the
    worker runs with ``FAUSTAPP_PIPELINES`` unset and each of these is timed and checked."""

    @property
    def checked_pipelines(self) -> tuple[str, ...]:
        """The faustapp pipelines whose outputs this row checks."""
        return self.pipelines or ((self.pipeline,) if self.pipeline else ())


CONSUMERS = (
    Consumer("raw", "raw aiokafka + orjson decode", "raw"),
    Consumer(
        "faustapp-1m-alo",
        "faustapp sensor-stats-1m (tumbling) at_least_once",
        "faustapp",
        "sensor-stats-1m",
    ),
    Consumer(
        "faustapp-1m-eos",
        "faustapp sensor-stats-1m (tumbling) exactly_once",
        "faustapp",
        "sensor-stats-1m",
        "exactly_once",
    ),
    Consumer(
        "faustapp-1m-sse100",
        "faustapp sensor-stats-1m (tumbling) at_least_once, 100 SSE clients",
        "sse",
        "sensor-stats-1m",
    ),
    Consumer("quix-1m", "quixstreams 1m tumbling .final() at-least-once", "quix"),
    Consumer("bytewax-1m", "bytewax 1m tumbling fold_window (event clock per key)", "bytewax"),
    Consumer("pathway-1m", "pathway 1m tumbling windowby (update stream)", "pathway"),
    Consumer(
        "faustapp-5m",
        "faustapp sensor-stats-5m (hopping) at_least_once",
        "faustapp",
        "sensor-stats-5m",
    ),
    Consumer(
        "faustapp-alerts",
        "faustapp sensor-alerts (sliding) at_least_once",
        "faustapp",
        "sensor-alerts",
    ),
    Consumer(
        "faustapp-sessions",
        "faustapp sensor-sessions (session) at_least_once",
        "faustapp",
        "sensor-sessions",
    ),
    Consumer(
        "faustapp-default",
        "faustapp default deployment (" + ", ".join(DEFAULT_PIPELINES) + ") at_least_once",
        "faustapp",
        pipelines=DEFAULT_PIPELINES,
    ),
    Consumer("raw-trades", "raw aiokafka + orjson decode, trades topic", "raw", dataset=TRADES),
    Consumer(
        "faustapp-candles",
        "faustapp trade-candles-1m (tumbling) at_least_once",
        "faustapp",
        "trade-candles-1m",
        dataset=TRADES,
    ),
    Consumer("raw-logs", "raw aiokafka + orjson decode, app-logs topic", "raw", dataset=LOGS),
    Consumer(
        "faustapp-log-stats",
        "faustapp log-stats-1m (tumbling) at_least_once",
        "faustapp",
        "log-stats-1m",
        dataset=LOGS,
    ),
    Consumer("raw-clicks", "raw aiokafka + orjson decode, clicks topic", "raw", dataset=CLICKS),
    Consumer(
        "faustapp-user-sessions",
        "faustapp user-sessions (session, 30 min gap) at_least_once",
        "faustapp",
        "user-sessions",
        dataset=CLICKS,
    ),
    Consumer(
        "faustapp-page-stats",
        "faustapp page-stats-1m (tumbling, regrouped by page) at_least_once",
        "faustapp",
        "page-stats-1m",
        dataset=CLICKS,
    ),
    Consumer(
        "faustapp-trending",
        "faustapp trending-items (hopping 5m regrouped by item, top 10) at_least_once",
        "faustapp",
        "trending-items",
        dataset=CLICKS,
    ),
)

OPT_IN_CONSUMERS: tuple[Consumer, ...] = ()
"""Rows run only when named in ``--only`` (compare with faustapp-1m-alo in the same run)."""


class Expectations:
    """What each consumer must output, computed once from the data set (lazily)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._cache: dict[str, object] = {}

    def _get(self, name: str, compute: Callable[[], object]) -> object:
        if name not in self._cache:
            self._cache[name] = compute()
        return self._cache[name]

    @property
    def tumbling_1m(self) -> dict[tuple[str, int], Figures]:
        return self._get("1m", lambda: self.dataset.expected_tumbling(MINUTE))  # type: ignore[return-value]

    @property
    def hopping_5m(self) -> dict[tuple[str, int], Figures]:
        return self._get("5m", lambda: self.dataset.expected_hopping(5 * MINUTE, MINUTE))  # type: ignore[return-value]

    @property
    def sessions(self) -> dict[tuple[str, int], Figures]:
        return self._get("sessions", lambda: self.dataset.expected_sessions(SESSION_GAP_MS))  # type: ignore[return-value]

    @property
    def alerts(self) -> tuple[set, set]:
        return self._get(  # type: ignore[return-value]
            "alerts",
            lambda: self.dataset.expected_alerts(5 * MINUTE, ALERT_Z, ALERT_MIN_READINGS),
        )

    @property
    def value_sum(self) -> float:
        return self._get(  # type: ignore[return-value]
            "sum", lambda: sum(sum(v) for v in self.dataset.values_by_sensor.values())
        )


@dataclass
class Context:
    """What every run needs: the broker, the data set and its expectations, where to write,
    and the time limits."""

    bootstrap: str
    prefix: str
    dataset: Dataset
    expect: Expectations
    work: Path
    logs: Path
    run_timeout: float
    startup_timeout: float
    stall_s: float
    broker_pid: int | None
    quiet: bool
    uses: dict[str, UseDataset | ClicksDataset] = field(default_factory=dict)
    """The trades, logs and clicks topics, when a consumer reads them."""
    _use_expected: dict[str, dict] = field(default_factory=dict)

    def data_of(self, consumer: Consumer) -> Dataset | UseDataset | ClicksDataset:
        """The pre-filled topic ``consumer`` reads."""
        return self.dataset if consumer.dataset == SENSORS else self.uses[consumer.dataset]

    def use_expected(self, consumer: Consumer) -> dict:
        """Expected results of a trades, logs or clicks pipeline (computed once)."""
        pipeline = consumer.pipeline
        assert pipeline is not None
        if pipeline not in self._use_expected:
            data = self.uses[consumer.dataset]
            if isinstance(data, ClicksDataset):
                self._use_expected[pipeline] = expected_clicks(pipeline, data)
            else:
                self._use_expected[pipeline] = expected_for(pipeline, data)
        return self._use_expected[pipeline]
