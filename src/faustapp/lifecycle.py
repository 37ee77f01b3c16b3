"""What a deployment does over the worker's life, once for all its routers: write-behind flushes
(and the last one before stop), idle close, repeated watermarks, and commits on revoke."""

from __future__ import annotations

import asyncio
from collections.abc import Set

import faust
from faust.types import TP

from faustapp.runtime import Deployment
from faustapp.settings import Settings


def install(app: faust.App, settings: Settings, deployment: Deployment) -> None:
    """Routers act when a batch arrives; these hooks act on time, before stop and on revoke."""
    if not deployment.routers:
        return
    if settings.batch_drain:

        async def flush_write_behind() -> None:
            """Persist what the write-behind caches hold once their interval has passed."""
            interval = max(settings.flush_interval_ms / 1000, 0.05) / 2
            while not app.should_stop:
                await asyncio.sleep(interval)
                await deployment.flush_due()

        async def flush_all() -> None:
            await deployment.flush_due(force=True)

        app.task(flush_write_behind)
        app.before_stop.append(flush_all)

    if settings.idle_close_ms:

        async def close_idle_partitions() -> None:
            for router in deployment.routers.values():
                await router.close_idle(settings.idle_close_ms)

        app.timer(interval=min(1.0, settings.idle_close_ms / 2000))(close_idle_partitions)

    async def repeat_watermarks() -> None:
        for router in deployment.routers.values():
            await router.repeat_watermarks()

    app.timer(interval=1.0)(repeat_watermarks)

    async def forget_revoked(sender: object, revoked: Set[TP], **kwargs: object) -> None:
        for router in deployment.routers.values():
            partitions = [tp.partition for tp in revoked if tp.topic == router.source_topic]
            await router.commit_revoked(partitions)
            router.forget(partitions)

    app.on_partitions_revoked.connect(forget_revoked)
