"""``faustapp tail``: its options, its output lines, and its consumer loop with Kafka faked."""

from __future__ import annotations

import asyncio
import base64
import io
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka.structs import TopicPartition

from faustapp.tail import TopicMissing, build_parser, format_record, tail

TOPIC = "clicks"


# --- options -----------------------------------------------------------------------------


def test_options_and_their_defaults() -> None:
    options = build_parser().parse_args([TOPIC])
    assert (options.topic, options.from_beginning, options.key, options.count) == (
        TOPIC,
        False,
        None,
        None,
    )
    options = build_parser().parse_args(
        ["--from-beginning", "dev.clicks", "--key", "u-1", "--count", "3"]
    )
    assert (options.topic, options.from_beginning, options.key, options.count) == (
        "dev.clicks",
        True,
        "u-1",
        3,
    )


@pytest.mark.parametrize(
    "args", [[], [TOPIC, "--count", "0"], [TOPIC, "--count", "-2"], [TOPIC, "--count", "1.5"]]
)
def test_bad_options_are_refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(args)
    assert exit_.value.code == 2
    assert "faustapp tail: error:" in capsys.readouterr().err


# --- output lines ------------------------------------------------------------------------


def line(key: bytes | None, value: bytes | None, partition: int = 2, offset: int = 7) -> bytes:
    return format_record(key, value, partition, offset, 1732435200123)


def test_a_json_value_is_printed_decoded() -> None:
    value = b'{"user_id": "u-42", "ts": 1732435200123, "amount": 12.5, "item_id": null}'
    assert line(b"u-42", value) == (
        b'{"key":"u-42","partition":2,"offset":7,"timestamp":1732435200123,'
        b'"value":{"user_id":"u-42","ts":1732435200123,"amount":12.5,"item_id":null}}\n'
    )


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (b"42", 42),
        (b'"text"', "text"),
        (b"[1, 2]", [1, 2]),
        (b"null", None),
        (b"not json", "not json"),
        (b"", ""),
        (b'{"value": NaN}', '{"value": NaN}'),
        ("caf\u00e9 {".encode(), "caf\u00e9 {"),
    ],
)
def test_values_that_are_not_json_objects(value: bytes, printed: object) -> None:
    data = orjson.loads(line(b"k", value))
    assert data["value"] == printed and "value_b64" not in data


def test_a_tombstone_prints_null_and_a_missing_key_prints_null() -> None:
    assert line(None, None) == (
        b'{"key":null,"partition":2,"offset":7,"timestamp":1732435200123,"value":null}\n'
    )


def test_bytes_that_are_not_utf8_are_kept_in_base64() -> None:
    key, value = b"\xff\xfe-1", b'{"a": "\xc3\x28"}'
    assert line(key, value) == (
        b'{"key":null,"key_b64":"//4tMQ==","partition":2,"offset":7,'
        b'"timestamp":1732435200123,"value":null,"value_b64":"eyJhIjogIsMoIn0="}\n'
    )
    assert base64.b64decode("//4tMQ==") == key
    assert base64.b64decode("eyJhIjogIsMoIn0=") == value


def test_every_line_is_one_line_of_json() -> None:
    printed = line(b"a\nb", b'{"text": "two\\nlines"}')
    assert printed.count(b"\n") == 1 and printed.endswith(b"\n")
    assert orjson.loads(printed)["key"] == "a\nb"


# --- the consumer loop, with Kafka faked -------------------------------------------------


def record(partition: int, offset: int, key: bytes | None, value: bytes | None) -> Any:
    return SimpleNamespace(
        partition=partition, offset=offset, key=key, value=value, timestamp=1000 + offset
    )


class FakeConsumer:
    """Hands out prepared batches; records what the tail asked of it."""

    instances: list[FakeConsumer] = []
    partitions: set[int] | None = {0, 1}
    batches: list[dict[TopicPartition, list[Any]]] = []

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.assigned: list[TopicPartition] = []
        self.seeks: list[tuple[str, tuple[TopicPartition, ...]]] = []
        self.positions: list[TopicPartition] = []
        self.polls = 0
        self.started = self.stopped = False
        self.batches = list(FakeConsumer.batches)
        self._client = SimpleNamespace(fetch_all_metadata=self._fetch_all_metadata)
        FakeConsumer.instances.append(self)

    async def _fetch_all_metadata(self) -> Any:
        return SimpleNamespace(partitions_for_topic=self.partitions_for_topic)

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions if topic == TOPIC else None

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = list(partitions)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        self.seeks.append(("beginning", partitions))

    async def seek_to_end(self, *partitions: TopicPartition) -> None:
        self.seeks.append(("end", partitions))

    async def position(self, partition: TopicPartition) -> int:
        self.positions.append(partition)
        return 0

    async def getmany(self, timeout_ms: int = 0) -> dict[TopicPartition, list[Any]]:
        self.polls += 1
        if self.batches:
            return self.batches.pop(0)
        await asyncio.sleep(0)
        return {}


@pytest.fixture(autouse=True)
def fresh_fake() -> None:
    FakeConsumer.instances, FakeConsumer.partitions = [], {0, 1}
    first, second = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    FakeConsumer.batches = [
        {first: [record(0, 0, b"u-1", b'{"n": 1}'), record(0, 1, b"u-2", b"plain")]},
        {},
        {
            second: [record(1, 5, b"u-1", None), record(1, 6, b"\x00\xff", b"[]")],
            first: [record(0, 2, None, b'{"n": 3}')],
        },
    ]


def run_tail(**options: Any) -> tuple[int, list[dict[str, Any]], FakeConsumer]:
    out = io.BytesIO()
    printed = asyncio.run(
        tail(TOPIC, "broker:9092", out=out, consumer_factory=FakeConsumer, **options)
    )
    (consumer,) = FakeConsumer.instances
    return printed, [orjson.loads(text) for text in out.getvalue().splitlines()], consumer


def test_reads_committed_records_of_every_partition_without_a_group() -> None:
    printed, lines, consumer = run_tail(count=5, from_beginning=True)
    assert printed == 5
    assert [(entry["partition"], entry["offset"]) for entry in lines] == [
        (0, 0),
        (0, 1),
        (1, 5),
        (1, 6),
        (0, 2),
    ]
    assert lines[2] == {"key": "u-1", "partition": 1, "offset": 5, "timestamp": 1005, "value": None}
    assert lines[3]["key_b64"] == "AP8=" and lines[3]["key"] is None
    assert consumer.options["isolation_level"] == "read_committed"
    assert consumer.options["group_id"] is None
    assert consumer.options["enable_auto_commit"] is False
    assert consumer.options["bootstrap_servers"] == "broker:9092"
    partitions = [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)]
    assert consumer.assigned == partitions
    assert consumer.seeks == [("beginning", tuple(partitions))]
    assert consumer.positions == partitions
    assert consumer.started and consumer.stopped


def test_starts_at_the_end_by_default_and_says_when_it_is_ready() -> None:
    notice = io.StringIO()
    out = io.BytesIO()
    asyncio.run(tail(TOPIC, "b", count=1, out=out, notice=notice, consumer_factory=FakeConsumer))
    (consumer,) = FakeConsumer.instances
    assert consumer.seeks == [("end", (TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)))]
    assert consumer.options["auto_offset_reset"] == "latest"
    assert notice.getvalue() == "tailing 'clicks' (2 partitions) from the end; Ctrl-C stops\n"


def test_count_stops_after_exactly_n_records_even_mid_batch() -> None:
    printed, lines, consumer = run_tail(count=1)
    assert printed == 1 and [entry["value"] for entry in lines] == [{"n": 1}]
    assert consumer.polls == 1 and consumer.stopped


def test_key_filters_records() -> None:
    printed, lines, _ = run_tail(key="u-1", count=2)
    assert printed == 2
    assert [(entry["key"], entry["offset"], entry["value"]) for entry in lines] == [
        ("u-1", 0, {"n": 1}),
        ("u-1", 5, None),
    ]


def test_stop_ends_an_unbounded_tail() -> None:
    async def scenario() -> int:
        stop = asyncio.Event()
        running = asyncio.create_task(
            tail(TOPIC, "b", stop=stop, out=io.BytesIO(), consumer_factory=FakeConsumer)
        )
        while FakeConsumer.instances == [] or FakeConsumer.instances[0].polls < 10:
            await asyncio.sleep(0)
        stop.set()
        return await asyncio.wait_for(running, 5)

    assert asyncio.run(scenario()) == 5
    assert FakeConsumer.instances[0].stopped


@pytest.mark.parametrize("partitions", [None, set()])
def test_a_missing_topic_fails_fast(partitions: set[int] | None) -> None:
    FakeConsumer.partitions = partitions
    with pytest.raises(TopicMissing, match="topic 'clicks' does not exist at broker:9092"):
        run_tail()
    (consumer,) = FakeConsumer.instances
    assert consumer.stopped and consumer.assigned == []


def test_a_closed_pipe_ends_the_tail_quietly() -> None:
    class ClosedPipe(io.BytesIO):
        def write(self, data: Any) -> int:
            raise BrokenPipeError

    printed = asyncio.run(
        tail(TOPIC, "b", out=ClosedPipe(), consumer_factory=FakeConsumer, count=10)
    )
    assert printed == 0 and FakeConsumer.instances[0].stopped
