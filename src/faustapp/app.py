"""The Faust application: settings from the environment, the declared pipelines it is asked to
run, and the views over them."""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlparse

import faust
from aiokafka.errors import KafkaError
from faust.sensors.prometheus import setup_prometheus_sensors

from faustapp import faust_fixes, kafka_client, lifecycle, runtime
from faustapp.api import catalog
from faustapp.local_state import LocalStateGuard
from faustapp.metrics import refresh_partition_offsets
from faustapp.settings import Settings, SettingsError

BUILT_IN_USES = (
    "faustapp.agents.sensors",
    "faustapp.agents.trades",
    "faustapp.agents.logs",
    "faustapp.agents.clicks",
)

settings = Settings.from_env()
faust_fixes.apply(fetch_max_wait_ms=settings.fetch_max_wait_ms)


async def wait_for_broker(settings: Settings) -> None:
    """Wait, with a clear log line, until a broker answers: a worker started before Kafka (or
    while it restarts) should wait and retry, not exit. A refused login or an untrusted
    certificate stops the worker at once with the reason, since waiting cannot fix them."""
    log = logging.getLogger("faustapp")
    bootstrap = settings.bootstrap_servers
    delay = 1.0
    while True:
        try:
            await kafka_client.probe(settings)
            return
        except kafka_client.KafkaAccessRefused as exc:
            log.error("%s; stopping", exc)
            raise
        except (KafkaError, OSError, asyncio.TimeoutError) as exc:
            detail = str(exc).removeprefix("KafkaConnectionError: ") or type(exc).__name__
            log.warning(
                "Kafka at %s is not reachable (%s); retrying in %.0f s",
                bootstrap,
                detail,
                delay,
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)


class TopicPartitionsMismatch(SettingsError):
    """An existing topic the worker consumes has another partition count than
    FAUSTAPP_PARTITIONS: keys would be routed to partitions that do not exist or hold no state."""


async def check_existing_topics(app: faust.App, settings: Settings) -> None:
    """Compare the existing topics the worker uses with what it would create: name every one
    with fewer replicas than configured (a warning: it loses data with its broker), and stop on
    a consumed topic or changelog whose partition count is not FAUSTAPP_PARTITIONS."""
    log = logging.getLogger("faustapp")
    changelogs = {table.changelog_topic_name for table in app.tables.values()}
    consumed = {
        name for agent in app.agents.values() for name in getattr(agent.channel, "topics", ())
    }
    names = set(getattr(app, "topic_names", ())) | changelogs | consumed
    try:
        shapes = await kafka_client.existing_topics(settings, names)
    except (KafkaError, OSError, asyncio.TimeoutError) as exc:
        log.warning("could not check the existing topics (%r)", exc)
        return
    for name, shape in sorted(shapes.items()):
        if shape.fewest_replicas < settings.replication_factor:
            log.warning(
                "topic %r has %d replica(s), fewer than FAUSTAPP_REPLICATION_FACTOR=%d: "
                "increase it with kafka-reassign-partitions, or it is lost with its broker",
                name,
                shape.fewest_replicas,
                settings.replication_factor,
            )
    wrong = {
        name: shape.partitions
        for name, shape in sorted(shapes.items())
        if name in consumed | changelogs and shape.partitions != settings.partitions
    }
    if wrong:
        counts = {s.partitions for n, s in shapes.items() if n in consumed | changelogs}
        fix = (
            f"set FAUSTAPP_PARTITIONS={counts.pop()}"
            if len(counts) == 1
            else "make them agree (Kafka adds partitions to a topic, never removes them), or "
            "run under a new FAUSTAPP_APP_ID for new changelogs"
        )
        message = (
            ", ".join(f"topic {name!r} has {n} partition(s)" for name, n in wrong.items())
            + f", but FAUSTAPP_PARTITIONS={settings.partitions}: every input, repartition "
            f"topic and changelog must have that many, since a key's windows live in the "
            f"partition it hashes to; {fix}"
        )
        log.error("%s; stopping", message)
        raise TopicPartitionsMismatch(message)


class FaustApp(faust.App):
    """Faust's App, plus a check of local state left behind by a crashed worker."""

    async def on_first_start(self) -> None:
        """Runs in the worker before any table partition is opened."""
        if settings.web_host in ("0.0.0.0", "::") and not settings.web_advertised_url:
            logging.getLogger("faustapp").warning(
                "FAUSTAPP_WEB_HOST=%s is what peers are told to query (%s); set "
                "FAUSTAPP_WEB_ADVERTISED_URL to a URL they can reach",
                settings.web_host,
                settings.advertised_url,
            )
        await wait_for_broker(settings)
        await check_existing_topics(self, settings)
        self._state_guard = LocalStateGuard(self.conf.datadir, self.conf.tabledir, self.conf.id)
        self._state_guard.on_start()
        await super().on_first_start()

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.before_stop: list[Callable[[], Awaitable[None]]] = []
        self.topic_names: set[str] = set()

    def topic(self, *topics: str, config: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """Every topic Faust creates for faustapp (inputs, outputs, DLQ, late, changelogs,
        repartition topics) gets ``min.insync.replicas``; replicas come from
        ``topic_replication_factor``. The names are kept for the start-up replica check."""
        self.topic_names.update(topics)
        return super().topic(
            *topics, config=kafka_client.with_topic_config(settings, config), **kwargs
        )

    async def on_stop(self) -> None:
        """Flush write-behind state first, so Faust's final commit covers it."""
        for hook in self.before_stop:
            try:
                await hook()
            except Exception:  # a failed flush is replayed after restart; never block the stop
                logging.getLogger(__name__).exception("flush before stop failed")
        await super().on_stop()

    async def on_shutdown(self) -> None:
        """Reached after any stop; the local state is trusted next time only after a clean one."""
        await super().on_shutdown()
        guard = getattr(self, "_state_guard", None)
        # A crash also ends here, with its transaction aborted: only a clean stop vouches for
        # the local copy.
        if guard is not None and self.crash_reason is None:
            guard.on_clean_stop()


app = FaustApp(
    settings.app_id,
    broker=settings.broker,
    store="rocksdb://",
    datadir=str(settings.data_dir),
    processing_guarantee=settings.processing_guarantee,
    topic_partitions=settings.partitions,
    # Replication factor of created topics, acks=all, TLS/SASL credentials.
    **kafka_client.faust_options(settings),
    consumer_auto_offset_reset="earliest",
    # Bind where told (e.g. 0.0.0.0); peers route queries to the advertised URL.
    web_bind=settings.web_host,
    web_host=urlparse(settings.advertised_url).hostname,
    web_port=settings.web_port,
    canonical_url=settings.advertised_url,
    producer_linger_ms=5,
    # Kafka's request timeout, not Faust's 20 minutes: a produce request a restarting broker
    # never answers is retried on a new connection after 30 s instead of blocking every later
    # send (and the rebalance that flushes them). Records themselves get two minutes to be
    # delivered (faust_fixes.DELIVERY_TIMEOUT_S); a transaction that loses one never commits.
    producer_request_timeout=30.0,
    # A topic created while the group forms (e.g. right after Kafka starts) is seen within
    # seconds, not after Faust's default of five minutes.
    consumer_metadata_max_age_ms=10_000,
    # A crashed worker's partitions move after this long (Faust's default is a minute).
    broker_session_timeout=settings.session_timeout_ms / 1000,
    broker_heartbeat_interval=min(3.0, settings.session_timeout_ms / 3000),
    # A rebalance waits until every event handed to an agent is processed and acked: no batch
    # writes to a partition after it is revoked.
    stream_wait_empty=True,
    autodiscover=False,
)

# A fixed prefix keeps metric names (and so the dashboards) stable whatever the app id.
setup_prometheus_sensors(app, "/metrics", name_prefix="faustapp")


@app.timer(interval=1.0)
async def _refresh_lag_gauges() -> None:
    """A caught-up or stalled worker still shows its lag, not "No data" after a rebalance."""
    refresh_partition_offsets(app)


def load_uses(modules: tuple[str, ...]) -> None:
    """Import the built-in uses and the user's ``FAUSTAPP_MODULES``: each declares its sources
    and pipelines into the catalog."""
    for name in (*BUILT_IN_USES, *modules):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            where = "FAUSTAPP_MODULES" if name in modules else "built-in use"
            raise SettingsError(f"{where}: cannot import {name!r}: {exc}") from exc


load_uses(settings.modules)
deployment = runtime.deploy(app, settings, catalog)
lifecycle.install(app, settings, deployment)

from faustapp import (  # noqa: E402 - the views need ``app`` and ``deployment``
    web,
    web_auth,
    web_items,
    web_page,
    web_pipelines,
    web_stream,
)

web_auth.install(app, settings)
web.install(app, deployment)
web_items.install(app, deployment)
web_pipelines.install(app, deployment)
web_stream.install(app, deployment)
web_page.install(app, deployment)

# The batch path allocates a few short-lived objects per event. Python's default collects the
# youngest generation every 700 allocations, and the full collections that follow rescan every
# module loaded at start-up: about a quarter of a busy worker's time. Collect less often, and
# leave what start-up loaded out of the scans.
gc.set_threshold(50_000, 20, 20)
gc.freeze()
