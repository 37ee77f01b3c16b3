"""Fixtures for tests that run real faustapp workers against the real broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from support.kafka_broker import free_port
from support.sensors import EventClock
from support.workers import WorkerProcess


@pytest.fixture(scope="session")
def event_clock() -> EventClock:
    """Event-time ranges that never overlap between tests sharing the broker."""
    return EventClock()


@pytest.fixture
def make_worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Factory for worker processes; every one started is stopped at the end of the test."""
    started: list[WorkerProcess] = []

    def make(app_id: str | None = None, **env: str) -> WorkerProcess:
        worker = WorkerProcess(
            kafka_bootstrap,
            tmp_path_factory.mktemp("worker"),
            free_port(),
            app_id=app_id or f"faustapp-it-{uuid.uuid4().hex[:8]}",
            extra_env=env,
        )
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.kill()
