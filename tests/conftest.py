"""Project-wide pytest fixtures: a real Kafka broker for integration and end-to-end tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from hypothesis import settings

from support.kafka_broker import BrokerError, session_broker

# Property tests judge results, never speed: make test runs the unit tests beside the cluster
# chaos run, where an example may take longer than Hypothesis' default 200 ms deadline.
settings.register_profile("faustapp", deadline=None)
settings.load_profile("faustapp")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of a real broker: $KAFKA_BOOTSTRAP, or one started for this session.

    A broker that cannot start fails the requesting tests with its log tail; it never skips,
    so a broken Kafka setup cannot silently turn the integration suite green.
    """
    external = os.environ.get("KAFKA_BOOTSTRAP", "").strip()
    if external:
        yield external
        return
    with ExitStack() as stack:
        failure = ""
        try:
            broker = stack.enter_context(session_broker())
        except BrokerError as exc:
            failure = str(exc)
        if failure:  # outside the except block, so the report shows the log tail only once
            pytest.fail(f"could not start the local Kafka broker: {failure}", pytrace=False)
        yield broker.bootstrap  # the broker is stopped and its data removed on exit
