"""The Faust application: settings from the environment, then every pipeline and view registers."""

from __future__ import annotations

import faust
from faust.sensors.prometheus import setup_prometheus_sensors

from faustapp.settings import Settings

settings = Settings.from_env()

app = faust.App(
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
    stream_wait_empty=False,
    autodiscover=False,
)

# A fixed prefix keeps metric names (and so the dashboards) stable whatever the app id.
setup_prometheus_sensors(app, "/metrics", name_prefix="faustapp")

# Pipelines and views register themselves on import; they need ``app`` above.
from faustapp import web  # noqa: E402,F401
from faustapp.agents import sensors  # noqa: E402,F401
