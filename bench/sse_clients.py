"""The cost of Server-Sent Events clients: one faustapp run of ``sensor-stats-1m`` with 100
streams of its results open for the whole run, each checked to receive every result once.

The clients run in a thread of the benchmark (one event loop, raw sockets, counting
``event: result`` frames), connect as soon as the worker's web server answers, and resume from
the output topic's end offsets before the run (as ``Last-Event-ID``), so each must receive
exactly the results of this run, however early or late it connected. The throughput is
measured as in the other faustapp rows; the cost is read against ``faustapp-1m-alo`` in the
same run (same pipeline and data, no clients).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from unittest import mock

from bench import faustapp_runner
from bench.broker import end_offsets
from bench.consumers import Consumer, Context
from bench.worker import Worker

CLIENTS = 100
STREAM = "/api/pipelines/sensor-stats-1m/stream"
MARK = b"event: result\n"
CONNECT_TIMEOUT_S = 120.0
DRAIN_S = 10.0
"""After the run, how long the clients may take to receive the last results."""


class Crowd:
    """``CLIENTS`` streams of one worker, each counting the results it receives."""

    def __init__(self, port: int, last_event_id: str | None, clients: int = CLIENTS) -> None:
        self.port = port
        self.clients = clients
        self.headers = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id else ""
        self.query = "" if last_event_id else "?from=earliest"
        self.counts = [0] * clients
        self.statuses: list[bytes | None] = [None] * clients
        self.closed_by_worker = [False] * clients
        self.connected_at: list[float | None] = [None] * clients
        self.spawn = 0.0
        self._stop = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        """Connect in the background (each client retries until the web server answers)."""
        self._thread.start()

    def stop(self) -> None:
        """Disconnect every client."""
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._all())
        finally:
            self._loop.close()

    async def _all(self) -> None:
        tasks = [asyncio.ensure_future(self._client(i)) for i in range(self.clients)]
        while not self._stop.is_set():
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _client(self, i: int) -> None:
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    return
                await asyncio.sleep(0.1)
        try:
            writer.write(
                f"GET {STREAM}{self.query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Accept: text/event-stream\r\n{self.headers}\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            self.statuses[i] = head.split(b"\r\n", 1)[0]
            self.connected_at[i] = time.monotonic()
            tail = b""
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    self.closed_by_worker[i] = True
                    return
                joined = tail + chunk
                self.counts[i] += joined.count(MARK)
                tail = joined[-(len(MARK) - 1) :]
        except (OSError, asyncio.IncompleteReadError):
            self.closed_by_worker[i] = True
        finally:
            writer.close()

    def summary(self, expected: int) -> dict:
        """What the clients saw, and whether each received every result exactly once."""
        ok = [s is not None and b" 200 " in s + b" " for s in self.statuses]
        connected = [t - self.spawn for t in self.connected_at if t is not None]
        return {
            "clients": self.clients,
            "answered_200": sum(ok),
            "connected_s_after_spawn_max": round(max(connected), 2) if connected else None,
            "results_expected_each": expected,
            "results_received_min": min(self.counts),
            "results_received_max": max(self.counts),
            "closed_by_worker": sum(self.closed_by_worker),
            "every_client_got_every_result_once": all(ok)
            and all(count == expected for count in self.counts),
        }


def run_sse(ctx: Context, consumer: Consumer, round_no: int) -> dict:
    """``run_faustapp`` with the crowd of streams connected to the worker it starts."""
    topic = f"{ctx.prefix}{consumer.pipeline}"
    start = asyncio.run(end_offsets(ctx.bootstrap, topic))
    last_id = ",".join(f"{p}:{o}" for p, o in sorted(start.items())) or None
    crowds: list[Crowd] = []
    expected = len(ctx.expect.tumbling_1m)
    with _crowded_workers(crowds, last_id, expected):
        run = faustapp_runner.run_faustapp(ctx, consumer, round_no)
    crowd = crowds[0] if crowds else None
    if crowd is None:
        run["correct"] = False
        run["checks"] = {**run.get("checks", {}), "ok": False, "error": "no worker started"}
        return run
    run["sse"] = crowd.summary(expected)
    checks = dict(run.get("checks") or {})
    checks["what"] = (
        f"{checks.get('what', '')}; each of {CLIENTS} SSE clients received every result of "
        "the run exactly once (counted from the offsets before it)"
    )
    if not run["sse"]["every_client_got_every_result_once"]:
        checks["ok"] = False
        checks["error"] = f"SSE clients: {run['sse']}"
        run["correct"] = False
    run["checks"] = checks
    return run


@contextlib.contextmanager
def _crowded_workers(crowds: list[Crowd], last_id: str | None, expected: int) -> Iterator[None]:
    """Every worker the run starts gets a crowd; the results still in flight when the run
    ends are drained before the crowd leaves (the worker is stopped only after that)."""
    real_start = Worker.start

    def start(worker: Worker) -> None:
        real_start(worker)
        crowd = Crowd(worker.port, last_id)
        crowd.spawn = worker.spawn
        crowd.start()
        crowds.append(crowd)

    real_terminate = faustapp_runner.terminate

    def terminate(proc, timeout):  # noqa: ANN001, ANN202 - the runner's own signature
        for crowd in crowds:
            _drain(crowd, expected)
            crowd.stop()
        return real_terminate(proc, timeout)

    with (
        mock.patch.object(faustapp_runner.Worker, "start", start),
        mock.patch.object(faustapp_runner, "terminate", terminate),
    ):
        yield


def _drain(crowd: Crowd, expected: int) -> None:
    """Wait (bounded) until every client has the expected results: the last ones may still
    be on their way when the run's own checks end."""
    deadline = time.monotonic() + DRAIN_S
    while time.monotonic() < deadline and min(crowd.counts) < expected:
        time.sleep(0.2)
