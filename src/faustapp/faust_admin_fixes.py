"""Corrections to how Faust creates topics, for a cluster that has just lost a broker.

Faust asks only the first broker of its metadata which node is the controller, and gives up
on the first error. Right after a broker dies, and until the cluster fences it (about 9 s by
default), that broker is still in the metadata: a worker starting then (a restart after a crash,
a new worker scaling out) fails to create its assignor topic or a changelog and exits. These
corrections ask each broker in turn and retry a creation that met a broker going away, for a
bounded time, so the worker waits for the cluster instead of exiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    NotControllerError,
    RequestTimedOutError,
)
from faust.exceptions import NotReady
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.drivers.aiokafka import Transport

log = logging.getLogger(__name__)

# Errors of a broker or controller that is going away or not elected yet: worth another try.
UNREACHABLE = (
    NodeNotReadyError,
    KafkaConnectionError,
    KafkaTimeoutError,
    RequestTimedOutError,
    NotControllerError,
    NotReady,
    asyncio.TimeoutError,
)
CREATE_TOPIC_RETRY_S = 120.0  # longer than a broker's fencing and a controller election
_BACKOFF_S = (0.5, 1.0, 2.0, 4.0)

_original_really_create_topic = Transport._really_create_topic


def _metadata_request() -> Any:
    if faust_aiokafka._AIOKAFKA_HAS_API_VERSION:
        return faust_aiokafka.MetadataRequest_v1([])
    return faust_aiokafka.MetadataRequest([])


async def _get_controller_node_of_a_live_broker(
    self: Transport, owner: Any, client: Any, timeout: int = 30000
) -> int | None:
    """The controller as told by the first broker that answers; the answering broker itself
    when the named controller cannot be reached (KRaft brokers forward topic creation)."""
    failures = []
    brokers = list(client.cluster.brokers())
    if any(broker.nodeId is None for broker in brokers):
        raise NotReady("Not connected to Kafka Broker")
    for broker in sorted(brokers, key=lambda b: b.nodeId):
        node_id = broker.nodeId
        try:
            wait_result = await owner.wait(
                client.send(node_id, _metadata_request()), timeout=timeout
            )
        except UNREACHABLE as exc:
            failures.append(f"node {node_id}: {type(exc).__name__}")
            continue
        if wait_result.stopped:
            owner.log.info("Shutting down - skipping creation.")
            return None
        controller = wait_result.result.controller_id
        if controller != node_id and not await client.ready(controller):
            return node_id
        return controller
    raise NodeNotReadyError(f"no broker answered for the controller ({'; '.join(failures)})")


async def _really_create_topic_retrying(
    self: Transport, owner: Any, client: Any, topic: str, *args: Any, **kwargs: Any
) -> None:
    """Faust's creation, tried again while brokers go away, up to CREATE_TOPIC_RETRY_S."""
    deadline = time.monotonic() + CREATE_TOPIC_RETRY_S
    attempt = 0
    while True:
        try:
            return await _original_really_create_topic(self, owner, client, topic, *args, **kwargs)
        except (*UNREACHABLE, RuntimeError) as exc:
            if isinstance(exc, RuntimeError) and "Invalid controller" not in str(exc):
                raise
            if owner.should_stop or time.monotonic() >= deadline:
                raise
            delay = _BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)]
            attempt += 1
            log.warning(
                "Creating topic %r failed (%s: %s); the cluster may be losing a broker: "
                "trying again in %.1fs",
                topic,
                type(exc).__name__,
                exc,
                delay,
            )
            await asyncio.sleep(delay)
            try:
                await client.force_metadata_update()
            except Exception as refresh:  # noqa: BLE001 - the next attempt reports the state
                log.debug("metadata refresh before retrying failed: %r", refresh)


def apply() -> None:
    """Install the corrections (idempotent)."""
    Transport._get_controller_node = _get_controller_node_of_a_live_broker
    Transport._really_create_topic = _really_create_topic_retrying
