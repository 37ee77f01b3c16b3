"""Workers bound to every interface that advertise another URL: peers route queries to the
advertised URL, not to the bind address."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from support.sensors import Reading, send_readings
from support.workers import http_get

pytestmark = pytest.mark.integration

PARTITIONS = 4
SERVED_BY = "X-Faustapp-Served-By"


def listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses a socket listens on at ``port`` (from the kernel's socket table)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def test_workers_bound_to_all_interfaces_route_to_their_advertised_urls(
    kafka_bootstrap, make_worker, event_clock
):
    prefix = f"adv-{uuid.uuid4().hex[:6]}."
    env = {
        "FAUSTAPP_TOPIC_PREFIX": prefix,
        "FAUSTAPP_PARTITIONS": str(PARTITIONS),
        "FAUSTAPP_PIPELINES": "sensor-stats-1m",
        "FAUSTAPP_WEB_HOST": "0.0.0.0",
    }
    first = make_worker(**env)
    second = make_worker(app_id=first.app_id, **env)
    for worker in (first, second):
        worker.extra_env["FAUSTAPP_WEB_ADVERTISED_URL"] = worker.url  # http://127.0.0.1:<port>
        worker.start()
    first.wait_ready(timeout=120)
    second.wait_ready(timeout=120)
    for worker in (first, second):
        assert listening_addresses(worker.web_port) == {"0.0.0.0"}, worker.log_tail()

    start = event_clock.allocate(minutes=2)
    sensors = [f"adv-s-{i}" for i in range(16)]
    readings = [Reading(s, start + i * 1000, float(i)) for i in range(10) for s in sensors]
    asyncio.run(send_readings(kafka_bootstrap, readings, f"{prefix}sensor-readings"))
    want = {s: 10 for s in sensors}  # every sensor: one window of 10 readings

    # Both workers own partitions, so each routes some queries to the other; every answer,
    # local or routed, holds the oracle's count.
    served_by: dict[str, dict[str, str]] = {}
    counts: dict[str, dict[str, int]] = {}
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        for worker in (first, second):
            counts[worker.url], served_by[worker.url] = {}, {}
            for sensor in sensors:
                status, body, headers = http_get(f"{worker.url}/api/sensors/{sensor}")
                if status == 200 and body.get("windows"):
                    counts[worker.url][sensor] = body["windows"][0]["count"]
                    served_by[worker.url][sensor] = headers.get(SERVED_BY, "")
        routed = second.url in served_by[first.url].values() and (
            first.url in served_by[second.url].values()
        )
        if all(c == want for c in counts.values()) and routed:
            break
        time.sleep(0.5)
    assert counts == {first.url: want, second.url: want}, (first.log_tail(), second.log_tail())
    # A routed answer names the peer by its advertised URL (never 0.0.0.0); each worker routed
    # to the other at least once, and both agree on who owns which sensor.
    for worker, other in ((first, second), (second, first)):
        peers = {url for url in served_by[worker.url].values() if url}
        assert other.url in peers, served_by
        assert all(url in (worker.url, other.url) for url in peers), served_by
    for sensor in sensors:
        owner_seen_by_first = served_by[first.url][sensor] or first.url
        owner_seen_by_second = served_by[second.url][sensor] or second.url
        assert owner_seen_by_first == owner_seen_by_second, (sensor, served_by)
