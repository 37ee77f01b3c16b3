"""Server-Sent Events of a pipeline's final results as they are committed.

``GET /api/pipelines/{name}/stream[?key=K][&from=latest|earliest]``: every record of the
pipeline's output topic, read ``read_committed``, as ``id: <position>`` / ``event: result`` /
``data: <record as emitted>``. A client that sends ``Last-Event-ID`` resumes right after that
event. A stream that starts behind the end reads with a consumer of its own (no group) until
it has caught up, then moves onto the topic's shared reader (``result_hub``). A client too slow
to take what is written within ``FAUSTAPP_SSE_WRITE_TIMEOUT_S`` is sent ``event: close`` (when
it still can be) and dropped: what a stream holds is bounded whatever the client does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time

import faust
from aiohttp import web as aioweb
from faust.web import Request, Response, View

from faustapp.catalogue import Entry, entries
from faustapp.pipeline import partition_for
from faustapp.records import InvalidRecord
from faustapp.result_hub import Hub, Hubs, Subscription, frames_from_hub
from faustapp.result_stream import (
    FROM_CHOICES,
    HEARTBEAT,
    START_TIMEOUT_S,
    BadPosition,
    Positions,
    ResultReader,
    StreamUnavailable,
    check_position,
    close_event,
    comment,
    format_position,
    parse_position,
)
from faustapp.runtime import Deployment
from faustapp.schema import check_id
from faustapp.settings import Settings
from faustapp.web import error, here, unavailable
from faustapp.web_auth import settings_of

log = logging.getLogger(__name__)

LIVE = comment("live")
"""Sent when a stream has caught up and reads from the worker's shared reader."""
POLL_MS = 500
"""Longest wait for records before checking the client, the heartbeat and the worker's stop."""
SEND_BUFFER_BYTES = 64 << 10
"""Kernel send buffer of a stream's socket: what a client that reads nothing can hold up."""
CLOSE_WRITE_S = 1.0
"""How long the ``event: close`` of a dropped client may take before its connection is cut."""
STOP_WAIT_S = 5.0


class Streams:
    """The streams this worker serves: their count (capped) and their end when it stops."""

    def __init__(self, settings: Settings, hubs: Hubs | None = None) -> None:
        self.settings = settings
        self.hubs = hubs if hubs is not None else Hubs(settings)
        self.active = 0
        self.stopping = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()

    def enter(self) -> None:
        """Count a new stream."""
        self.active += 1
        self.idle.clear()

    def leave(self) -> None:
        """Count a stream that ended."""
        self.active -= 1
        if self.active == 0:
            self.idle.set()

    async def stop(self, *_: object) -> None:
        """Tell every stream to end (with ``event: close``) and wait a little for them."""
        self.stopping.set()
        with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
            await asyncio.wait_for(self.idle.wait(), STOP_WAIT_S)
        await self.hubs.stop()


def install(app: faust.App, deployment: Deployment) -> None:
    """Mount these views on ``app`` for what ``deployment`` runs."""
    catalogue = entries(deployment)
    settings = settings_of(app)
    streams = Streams(settings, Hubs(settings))
    hooks = getattr(app, "before_stop", None)
    if isinstance(hooks, list):
        hooks.append(streams.stop)
    web_app: aioweb.Application = app.web.web_app
    web_app.on_shutdown.append(streams.stop)

    @app.page("/api/pipelines/{name}/stream")
    class StreamView(View):
        """Final results of a pipeline pushed as they are committed, resumable by position."""

        async def get(self, request: Request, name: str) -> Response:
            """Validate, then stream until the client leaves, lags or the worker stops."""
            entry = catalogue.get(name)
            if entry is None:
                running = ", ".join(catalogue) or "none"
                return error(self, 404, f"unknown pipeline {name[:256]!r}; running: {running}")
            key = request.query.get("key")
            if key is not None:
                try:
                    check_id("key", key)
                except InvalidRecord as exc:
                    return error(self, 400, f"invalid key: {exc}")
            start = request.query.get("from", "latest")
            if start not in FROM_CHOICES:
                return error(self, 400, f"from must be latest or earliest, got {start[:32]!r}")
            resume = None
            last_id = request.headers.get("Last-Event-ID")
            if last_id is not None:
                try:
                    resume = parse_position(last_id)
                except BadPosition as exc:
                    return error(self, 400, str(exc))
            if streams.stopping.is_set():
                return unavailable(self, "this worker is stopping")
            if streams.active >= streams.settings.sse_max_clients:
                limit = streams.settings.sse_max_clients
                return unavailable(self, f"this worker serves its maximum of {limit} streams")
            streams.enter()
            try:
                return await _serve(self, app, streams, entry, request, key, start, resume)
            finally:
                streams.leave()


async def _serve(
    view: View,
    app: faust.App,
    streams: Streams,
    entry: Entry,
    request: Request,
    key: str | None,
    start: str,
    resume: Positions | None,
) -> aioweb.StreamResponse:
    source = _Source(ResultReader(settings_of(app), entry.output_topic, key), streams.hubs)
    try:
        response, streaming = await _open(view, app, source, request, start, resume)
        if streaming:
            await _pump(streams, source, request, response)
        return response
    finally:
        await source.close()


async def _open(
    view: View,
    app: faust.App,
    source: _Source,
    request: Request,
    start: str,
    resume: Positions | None,
) -> tuple[aioweb.StreamResponse, bool]:
    """The prepared stream placed at its start (and True), the 400 of a position that does not
    fit, or a stream already ended with the reason Kafka could not be read."""
    failure = None
    reader = source.reader
    try:
        if not await source.join_directly(start, resume):
            partitions = await reader.open()
            if resume is not None:
                check_position(resume, partitions)
            if partitions:
                await reader.seek(start, resume)
    except BadPosition as exc:
        return error(view, 400, str(exc)), False
    except StreamUnavailable as exc:
        failure = str(exc)
    response = aioweb.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            "X-Faustapp-Served-By": here(app),
        }
    )
    _limit_send_buffer(request)
    await response.prepare(request)
    if failure is not None:
        await _end(request, response, failure)
        return response, False
    where = format_position(reader.positions) or "its beginning, once it exists"
    try:
        await _write(response, comment(f"{reader.topic} from {where}"), CLOSE_WRITE_S)
    except (TimeoutError, asyncio.TimeoutError, ConnectionError, RuntimeError):
        return response, False  # the client left (or reads nothing) already
    return response, True


class _Source:
    """Where a stream's events come from: its own consumer until that has read as far as the
    topic's hub, then the hub (and its own consumer is stopped)."""

    def __init__(self, reader: ResultReader, hubs: Hubs) -> None:
        self.reader = reader
        self.hubs = hubs
        self.hub: Hub | None = None
        self.subscription: Subscription | None = None
        self.skip: Positions = {}
        self.joined = False
        """Set once on joining the hub: the stream says so in a comment (``: live``)."""

    async def next(self, wait_s: float) -> bytes:
        """The frames of what arrived within ``wait_s``; StreamUnavailable to end the stream."""
        if self.subscription is None:
            await self._join()
        subscription = self.subscription
        if subscription is None:
            return b"".join(await self.reader.next_events(int(wait_s * 1000)))
        if subscription.ended:
            raise StreamUnavailable(subscription.ended)
        queue = subscription.queue
        batches = []
        if queue.empty():
            try:
                async with asyncio.timeout(wait_s):  # a cancelled get loses no item
                    batches.append(await queue.get())
            except TimeoutError:
                return b""
        while not queue.empty():  # every batch waiting, in one write
            batches.append(queue.get_nowait())
        reader = self.reader
        frames = [frames_from_hub(b, reader.positions, reader.key, self.skip) for b in batches]
        return b"".join(frames)

    async def join_directly(self, start: str, resume: Positions | None) -> bool:
        """Start on the hub, with no consumer of its own, when the stream starts where the hub
        is: at the end, or at a Last-Event-ID equal to the hub's position."""
        reader = self.reader
        hub = self.hubs.hub(reader.topic)
        try:
            await asyncio.wait_for(hub.ready.wait(), START_TIMEOUT_S)
        except (TimeoutError, asyncio.TimeoutError):
            return False
        if not hub.usable:
            return False
        partitions = hub.reader.all_partitions
        if resume is not None:
            check_position(resume, partitions)
        if reader.key is not None:
            read = [partition_for(reader.key.decode(), len(partitions))]
        else:
            read = sorted(partitions)
        at = {p: hub.positions[p] for p in read if p in hub.positions}
        if len(at) != len(read):
            return False
        if resume is None and start != "latest":
            return False
        if resume is not None and any(resume.get(p) != at[p] for p in read):
            return False  # behind the hub (or ahead of it): its own consumer catches up
        # No await from reading the hub's positions to the subscription.
        reader.read, reader.all_partitions, reader.positions = read, set(partitions), dict(at)
        self.hub, self.subscription, self.skip = hub, hub.subscribe(), dict(at)
        self.joined = True
        return True

    async def _join(self) -> None:
        reader = self.reader
        if not reader.read:
            return  # the topic does not exist yet
        hub = self.hubs.hub(reader.topic)
        if not hub.usable:
            return
        fetched = await reader.fetch_positions()
        # No await from this check to the subscription: no hub batch can come in between.
        behind = [p for p in reader.read if fetched[p] < hub.positions.get(p, fetched[p] + 1)]
        if hub.usable and not behind:
            self.hub, self.subscription, self.skip = hub, hub.subscribe(), fetched
            self.joined = True
            await reader.close()

    async def close(self) -> None:
        """Leave the hub and stop the stream's own consumer."""
        if self.hub is not None and self.subscription is not None:
            self.hub.unsubscribe(self.subscription)
        await self.reader.close()


async def _pump(
    streams: Streams, source: _Source, request: Request, response: aioweb.StreamResponse
) -> None:
    """Copy the stream's events to the client; heartbeats while idle; end with a reason."""
    settings = streams.settings
    heartbeat = settings.sse_heartbeat_s
    last_write = time.monotonic()
    reason = None
    try:
        while reason is None:
            if streams.stopping.is_set():
                reason = "worker stopping"
                break
            if _client_gone(request):
                return
            wait_s = max(0.0, min(POLL_MS / 1000, heartbeat - (time.monotonic() - last_write)))
            try:
                data = await source.next(wait_s)
            except StreamUnavailable as exc:
                reason = str(exc)
                break
            if source.joined:
                source.joined = False
                data = LIVE + data
            if not data:
                if time.monotonic() - last_write < heartbeat:
                    continue
                data = HEARTBEAT
            try:
                await _write(response, data, settings.sse_write_timeout_s)
            except (TimeoutError, asyncio.TimeoutError):
                limit = settings.sse_write_timeout_s
                reason = f"client too slow: a write waited more than {limit:g} s"
            except (ConnectionError, RuntimeError):
                return  # the client left
            last_write = time.monotonic()
    finally:
        await source.close()
    await _end(request, response, reason)


async def _end(request: Request, response: aioweb.StreamResponse, reason: str) -> None:
    """Send ``event: close`` if the client still takes it, then cut the connection."""
    log.info("ending the stream of %s: %s", request.remote, reason)
    try:
        async with asyncio.timeout(CLOSE_WRITE_S):  # a client that reads nothing cannot hold it
            await response.write(close_event(reason))
            await response.write_eof()
    except (TimeoutError, asyncio.TimeoutError, ConnectionError, RuntimeError):
        transport = request.transport
        if transport is not None:
            transport.abort()  # what it holds unsent is dropped with it


async def _write(response: aioweb.StreamResponse, data: bytes, timeout: float) -> None:
    async with asyncio.timeout(timeout):  # no task per write, unlike wait_for
        await response.write(data)


def _client_gone(request: Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _limit_send_buffer(request: Request) -> None:
    """Cap the kernel's buffer for this socket, so a client that stops reading is noticed
    after a bounded amount of data, not after megabytes."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
