"""The live page in headless Chromium against a real worker on the real broker: it loads with no
console error, shows final results that arrive while it is open (pushed over the SSE stream),
and charts the chosen key's field with exactly the figures the test's readings make; with
FAUSTAPP_API_TOKEN set it asks for the token and then shows the data."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest

from support.api_client import bearer, get, wait_ready
from support.headless_chromium import chromium_page
from support.kafka_broker import free_port
from support.sensors import MINUTE, EventClock, Reading, key_per_partition, send_readings
from support.workers import WorkerProcess

pytestmark = pytest.mark.e2e

PARTITIONS = 2
PIPELINE = "sensor-stats-1m"
GRACE_MS = 1000
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def event_clock() -> EventClock:
    """Event-time ranges that only move forward (the topics are this module's own)."""
    return EventClock()


def _worker(bootstrap: str, tmp, prefix: str, **env: str) -> WorkerProcess:
    """A worker on topics of its own (``prefix``), so the top table holds this test's keys."""
    return WorkerProcess(
        bootstrap,
        tmp,
        free_port(),
        app_id=f"faustapp-e2e-{prefix[:-1]}",
        extra_env={
            "FAUSTAPP_TOPIC_PREFIX": prefix,
            "FAUSTAPP_PIPELINES": PIPELINE,
            "FAUSTAPP_PARTITIONS": str(PARTITIONS),
            "FAUSTAPP_GRACE_MS": str(GRACE_MS),
            **env,
        },
    ).start()


class Feed:
    """Readings minute by minute (each minute closes the one before on every partition), and
    the final 1-minute windows they make: the oracle."""

    def __init__(self, bootstrap: str, prefix: str, start: int) -> None:
        self.bootstrap = bootstrap
        self.topic = f"{prefix}sensor-readings"
        self.start = start
        sensors = key_per_partition(f"page-{uuid.uuid4().hex[:4]}", PARTITIONS)
        self.main, self.other = sensors[0], sensors[1]
        self.windows: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))

    def minute(self, m: int) -> None:
        """Send minute ``m``: the main sensor has the most readings, more every minute."""
        base = self.start + m * MINUTE
        readings = [Reading(self.main, base + 1000 * (i + 1), float(i + m)) for i in range(5 + m)]
        readings += [Reading(self.other, base + 1000 * (i + 1), 100.0 + i) for i in range(2)]
        for r in readings:
            self.windows[r.sensor_id][m].append(r.value)
        # Playwright's sync API runs an event loop in this thread: produce from another one.
        with ThreadPoolExecutor(1) as pool:
            sent = pool.submit(asyncio.run, send_readings(self.bootstrap, readings, self.topic))
            sent.result(60)

    def final(self, sensor: str, closed: int) -> list[tuple[int, int]]:
        """(window end in seconds, count) of the sensor's windows before minute ``closed``."""
        return [
            ((self.start + (m + 1) * MINUTE) // 1000, len(values))
            for m, values in sorted(self.windows[sensor].items())
            if m < closed
        ]


def _wait(page, log, expression: str, arg: object = None) -> None:
    """Wait for ``expression`` to hold in the page (bounded); on timeout, say what the page
    showed and logged."""
    try:
        page.wait_for_function(expression, arg=arg, timeout=WAIT_MS)
    except Exception as exc:  # Playwright's TimeoutError
        state = page.evaluate(
            "() => ({key: faustapp.key, field: faustapp.field, events: faustapp.events, "
            "pipeline: faustapp.pipeline && faustapp.pipeline.name, "
            "message: document.querySelector('#message').textContent, "
            "stream: document.querySelector('#stream-status').textContent, "
            "top: document.querySelector('#top-title').textContent})"
        )
        raise AssertionError(f"{expression} never held: {state}; console: {log.console}") from exc


def _chart(page) -> list[tuple[int, int]]:
    data = page.evaluate("() => window.faustapp.chart ? window.faustapp.chart.data : null")
    assert data is not None, "no chart"
    return [(int(x), int(y)) for x, y in zip(data[0], data[1], strict=True)]


def _wait_chart(page, log, want: list[tuple[int, int]]) -> None:
    """Until the chart holds exactly the windows of ``want``; then their values must match."""
    xs = [x for x, _ in want]
    _wait(
        page,
        log,
        "xs => window.faustapp.chart && JSON.stringify(window.faustapp.chart.data[0]) === "
        "JSON.stringify(xs)",
        xs,
    )
    assert _chart(page) == want


def _inked_pixels(page) -> int:
    """Pixels of the chart's canvas that are not blank."""
    return page.evaluate(
        """() => {
          const canvas = document.querySelector('#chart canvas');
          const ctx = canvas.getContext('2d');
          const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
          let inked = 0;
          for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) inked++;
          return inked;
        }"""
    )


def _cells(page, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        selector, "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )


def _result_rows(page) -> list[list[str]]:
    return _cells(page, "#results tbody tr")


def test_live_page_shows_results_as_they_arrive(kafka_bootstrap, tmp_path, event_clock):
    prefix = f"page-{uuid.uuid4().hex[:6]}."
    worker = _worker(kafka_bootstrap, tmp_path / "worker", prefix)
    try:
        wait_ready(worker, partitions=PARTITIONS, timeout=180)
        feed = Feed(kafka_bootstrap, prefix, event_clock.allocate(minutes=5))
        feed.minute(0)
        feed.minute(1)  # minute 0 is final: history for the chart and the top table
        _wait_results(worker, feed.main)
        with chromium_page() as (page, log):
            page.goto(f"{worker.url}/?pipeline={PIPELINE}")
            _wait(page, log, "k => window.faustapp.key === k", feed.main)
            _wait(page, log, "() => document.querySelector('#stream-status').textContent == 'live'")
            _wait_chart(page, log, feed.final(feed.main, closed=1))
            assert _cells(page, "#top tbody tr")[0][1] == feed.main
            assert page.locator("#health-badge").inner_text() == "ok"

            feed.minute(2)  # closes minute 1 while the page is open
            _wait(page, log, "() => document.querySelectorAll('#results tbody tr').length >= 2")
            first = _result_rows(page)
            feed.minute(3)  # and minute 2
            _wait(page, log, "() => document.querySelectorAll('#results tbody tr').length >= 4")
            rows = _result_rows(page)
            assert rows != first and rows[-len(first) :] == first, (first, rows)
            count = _cells(page, "#results thead tr")[0].index("count")
            live = sorted((r[0], int(r[count])) for r in rows)
            want = sorted(
                (sensor, count)
                for sensor in (feed.main, feed.other)
                for _, count in feed.final(sensor, closed=3)[1:]
            )
            assert live == want, (rows, want)
            _wait_chart(page, log, feed.final(feed.main, closed=3))
            assert _inked_pixels(page) > 1000
            shot = tmp_path / "live-page.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
            assert log.problems() == [], log.console
    finally:
        worker.kill()


def _wait_results(worker: WorkerProcess, sensor: str, headers: dict | None = None) -> None:
    """Until the worker answers the key with a final result (bounded)."""
    path = f"/api/pipelines/{PIPELINE}/keys/{sensor}"
    for _ in range(240):
        answer = get(worker.url, path, headers or {})
        if answer.status == 200 and answer.json()["results"]:
            return
        time.sleep(0.25)
    raise AssertionError(f"no final result for {sensor}: {answer.status} {answer.body[:200]}")


def test_live_page_asks_for_the_token(kafka_bootstrap, tmp_path, event_clock):
    token = "pg-" + uuid.uuid4().hex
    prefix = f"page-{uuid.uuid4().hex[:6]}."
    worker = _worker(kafka_bootstrap, tmp_path / "worker", prefix, FAUSTAPP_API_TOKEN=token)
    try:
        wait_ready(worker, partitions=PARTITIONS, timeout=180)
        feed = Feed(kafka_bootstrap, prefix, event_clock.allocate(minutes=3))
        feed.minute(0)
        feed.minute(1)
        _wait_results(worker, feed.main, bearer(token))
        with chromium_page() as (page, log):
            page.goto(f"{worker.url}/")
            page.wait_for_selector("#auth:not([hidden])", timeout=WAIT_MS)
            assert page.locator("#pipeline option").count() == 0  # nothing shown without it
            page.fill("#token", token)
            page.click("#auth button[type=submit]")
            _wait(page, log, "k => window.faustapp.key === k", feed.main)
            assert page.locator("#pipeline").input_value() == PIPELINE
            assert page.evaluate("() => sessionStorage.getItem('faustapp-token')") == token
            _wait_chart(page, log, feed.final(feed.main, closed=1))
            page.screenshot(path=str(tmp_path / "live-page-token.png"), full_page=True)
            # Only the refusals before the token was given may be logged.
            assert log.problems(allowed=("401",)) == [], log.console
    finally:
        worker.kill()


def test_docs_page_renders_every_path(kafka_bootstrap, tmp_path):
    """/docs draws one section per operation of /openapi.json, with its parameters and every
    answer status, from the package's own files only."""
    prefix = f"docs-{uuid.uuid4().hex[:6]}."
    worker = _worker(kafka_bootstrap, tmp_path / "worker", prefix, FAUSTAPP_API_TOKEN="d0c")
    try:
        wait_ready(worker, partitions=PARTITIONS, timeout=180)
        spec = get(worker.url, "/openapi.json").json()
        want = [f"GET {path}" for path in spec["paths"]]
        with chromium_page() as (page, log):
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(f"{worker.url}/docs")
            page.wait_for_selector("#paths section h2", timeout=WAIT_MS)
            assert page.eval_on_selector_all("#paths h2", "hs => hs.map(h => h.textContent)") == (
                want
            )
            sections = page.locator("#paths section")
            for i, (path, item) in enumerate(spec["paths"].items()):
                op = item["get"]
                text = sections.nth(i).inner_text()
                for status in op["responses"]:
                    assert f"\n{status}\t" in text, (path, status, text)
                for param in op.get("parameters", []):
                    assert param["name"] in text, (path, param["name"])
                if op.get("security"):
                    assert "Authorization: Bearer" in text, path
            page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
            assert all(url.startswith(worker.url) for url in requests), requests
            assert log.problems() == [], log.console
    finally:
        worker.kill()


def test_every_pipeline_can_be_picked(kafka_bootstrap, tmp_path):
    """Every pipeline /api/pipelines lists (all of them running) opens its stream, its fields
    and its top table on the page, with no console error."""
    prefix = f"all-{uuid.uuid4().hex[:6]}."
    worker = _worker(kafka_bootstrap, tmp_path / "worker", prefix, FAUSTAPP_PIPELINES="all")
    try:
        wait_ready(worker, partitions=PARTITIONS, timeout=180)
        listed = get(worker.url, "/api/pipelines").json()["pipelines"]
        assert len(listed) > 5, [p["name"] for p in listed]
        with chromium_page() as (page, log):
            page.goto(f"{worker.url}/")
            _wait(page, log, "() => document.querySelectorAll('#pipeline option').length > 0")
            names = page.eval_on_selector_all("#pipeline option", "os => os.map(o => o.value)")
            assert names == [p["name"] for p in listed]
            for pipeline in listed:
                page.select_option("#pipeline", pipeline["name"])
                _wait(
                    page,
                    log,
                    "n => window.faustapp.pipeline.name === n && "
                    "document.querySelector('#stream-status').textContent.startsWith('live') && "
                    "document.querySelector('#top-title').textContent !== ''",
                    pipeline["name"],
                )
                fields = page.eval_on_selector_all("#field option", "os => os.map(o => o.value)")
                assert fields == pipeline["numeric_fields"], pipeline["name"]
                title = page.locator("#top-title").inner_text()
                if fields:
                    assert title.endswith("· final") and "unavailable" not in title, title
                else:
                    assert title == "no numeric field", title
            assert log.problems() == [], log.console
    finally:
        worker.kill()
