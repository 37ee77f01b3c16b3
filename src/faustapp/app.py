"""The Faust application: settings from the environment, the declared pipelines it is asked to
run, and the views over them."""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
from collections.abc import Awaitable, Callable

import faust
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from faust.sensors.prometheus import setup_prometheus_sensors

from faustapp import faust_fixes, runtime
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


async def wait_for_broker(bootstrap: str) -> None:
    """Wait, with a clear log line, until the brokers answer: a worker started before Kafka (or
    while it restarts) should wait and retry, not exit."""
    log = logging.getLogger("faustapp")
    delay = 1.0
    while True:
        client = AIOKafkaClient(bootstrap_servers=bootstrap)
        try:
            await client.bootstrap()
            return
        except KafkaError as exc:
            log.warning(
                "Kafka at %s is not reachable (%s); retrying in %.0f s",
                bootstrap,
                exc.__class__.__name__,
                delay,
            )
        finally:
            await client.close()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)


class FaustApp(faust.App):
    """Faust's App, plus a check of local state left behind by a crashed worker."""

    async def on_first_start(self) -> None:
        """Runs in the worker before any table partition is opened."""
        await wait_for_broker(settings.bootstrap_servers)
        self._state_guard = LocalStateGuard(self.conf.datadir, self.conf.tabledir, self.conf.id)
        self._state_guard.on_start()
        await super().on_first_start()

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.before_stop: list[Callable[[], Awaitable[None]]] = []

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
    topic_replication_factor=1,
    consumer_auto_offset_reset="earliest",
    web_bind=settings.web_host,
    web_host=settings.web_host,
    web_port=settings.web_port,
    canonical_url=f"http://{settings.web_host}:{settings.web_port}",
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
