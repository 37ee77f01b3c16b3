"""Positions (the event ids of the results stream), Server-Sent Events framing and settings."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import orjson
import pytest

from faustapp.result_hub import Batch, frames_from_hub
from faustapp.result_stream import (
    HEARTBEAT,
    BadPosition,
    ResultReader,
    StreamUnavailable,
    check_position,
    close_event,
    comment,
    format_position,
    frames_of,
    parse_position,
    result_event,
)
from faustapp.settings import Settings, SettingsError
from faustapp.web_stream import Streams


def parse_frames(raw: bytes) -> list[dict]:
    """A minimal Server-Sent Events parser, per the HTML standard's rules."""
    events, fields, data = [], {}, []
    for line in raw.decode().split("\n"):
        if line == "":
            if fields or data:
                events.append({**fields, "data": "\n".join(data)} if data else fields)
            fields, data = {}, []
        elif line.startswith(":"):
            fields.setdefault("comments", []).append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            else:
                fields[name] = value
    return events


@pytest.mark.parametrize(
    ("text", "positions"),
    [
        ("0:15", {0: 15}),
        ("0:15,1:3", {0: 15, 1: 3}),
        ("3:0,1:99999999999", {3: 0, 1: 99999999999}),
        (" 2:7 ", {2: 7}),
    ],
)
def test_positions_parse_and_format_round_trip(text, positions):
    assert parse_position(text) == positions
    assert parse_position(format_position(positions)) == positions
    assert format_position(positions) == ",".join(f"{p}:{positions[p]}" for p in sorted(positions))


@pytest.mark.parametrize(
    "text",
    ["", "0", "0:", ":1", "0:1,", "0:1;1:2", "a:1", "0:-1", "0:1,0:2", "0:1 ,1:2", "0:1" * 5000],
)
def test_malformed_positions_are_refused(text):
    with pytest.raises(BadPosition):
        parse_position(text)


def test_a_position_must_name_partitions_the_topic_has():
    check_position({0: 1, 3: 9}, {0, 1, 2, 3})
    with pytest.raises(BadPosition, match=r"\[4\]"):
        check_position({0: 1, 4: 9}, {0, 1, 2, 3})


def test_a_result_event_carries_its_position_and_the_record_as_emitted():
    value = orjson.dumps({"sensor_id": "s-1", "count": 3, "mean": 1.5})
    frame = result_event("0:15,1:3", value)
    assert frame == b"id: 0:15,1:3\nevent: result\ndata: " + value + b"\n\n"
    (event,) = parse_frames(frame)
    assert event["id"] == "0:15,1:3" and event["event"] == "result"
    assert orjson.loads(event["data"]) == orjson.loads(value)


def test_a_value_spanning_lines_is_sent_as_several_data_lines():
    value = b'{\n  "a": 1,\r\n  "b": 2\r}'
    (event,) = parse_frames(result_event("0:1", value))
    assert orjson.loads(event["data"]) == {"a": 1, "b": 2}


def test_a_tombstone_is_null():
    (event,) = parse_frames(result_event("0:1", None))
    assert event["data"] == "null"


def test_close_event_and_comments():
    (event,) = parse_frames(close_event('too slow "really"\nyes'))
    assert event["event"] == "close"
    assert orjson.loads(event["data"]) == {"reason": 'too slow "really"\nyes'}
    assert parse_frames(HEARTBEAT) == [{"comments": ["heartbeat"]}]
    assert parse_frames(comment("a\nb")) == [{"comments": ["a b"]}]


def test_settings_defaults_and_bounds():
    def sse(settings: Settings) -> tuple[float, float, int]:
        return settings.sse_heartbeat_s, settings.sse_write_timeout_s, settings.sse_max_clients

    assert sse(Settings.from_env({})) == sse(Settings()) == (15.0, 10.0, 200)
    got = Settings.from_env(
        {
            "FAUSTAPP_SSE_HEARTBEAT_S": "0.5",
            "FAUSTAPP_SSE_WRITE_TIMEOUT_S": "2",
            "FAUSTAPP_SSE_MAX_CLIENTS": "7",
        }
    )
    assert sse(got) == (0.5, 2.0, 7)
    for name, bad in [
        ("FAUSTAPP_SSE_HEARTBEAT_S", "0"),
        ("FAUSTAPP_SSE_HEARTBEAT_S", "nan"),
        ("FAUSTAPP_SSE_WRITE_TIMEOUT_S", "x"),
        ("FAUSTAPP_SSE_MAX_CLIENTS", "0"),
        ("FAUSTAPP_SSE_MAX_CLIENTS", "1.5"),
    ]:
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: bad})


def test_stopping_waits_for_the_streams_to_end():
    async def scenario() -> list[str]:
        streams = Streams(Settings())
        seen = []

        async def stream() -> None:
            streams.enter()
            try:
                await streams.stopping.wait()
                await asyncio.sleep(0.05)
                seen.append("ended")
            finally:
                streams.leave()

        task = asyncio.ensure_future(stream())
        await asyncio.sleep(0)
        assert streams.active == 1
        await streams.stop()
        seen.append("stopped")
        await task
        assert streams.active == 0
        return seen

    assert asyncio.run(scenario()) == ["ended", "stopped"]


@dataclass
class FakeRecord:
    """The fields of a consumer record the stream reads."""

    offset: int
    key: bytes
    value: bytes


def _records() -> dict[int, list[FakeRecord]]:
    return {
        0: [FakeRecord(5, b"a", b'{"n":1}'), FakeRecord(7, b"b", b'{"n":2}')],
        2: [FakeRecord(3, b"a", b'{"n":3}')],
    }


def test_shared_frames_equal_each_streams_own():
    records = _records()
    batch = Batch({0: 5, 1: 9, 2: 3}, {0: 8, 1: 9, 2: 4}, records)
    own = {0: 5, 1: 9, 2: 3}
    expected = b"".join(frames_of(records, own, None))
    assert own == batch.after
    mine = {0: 5, 1: 9, 2: 3}
    assert frames_from_hub(batch, mine, None, {}) == expected == batch.shared_frames()
    assert mine == batch.after
    ids = [e["id"] for e in parse_frames(expected)]
    assert ids == ["0:6,1:9,2:3", "0:8,1:9,2:3", "0:8,1:9,2:4"]


def test_a_key_stream_reads_its_partition_and_key_past_skip():
    batch = Batch({0: 5, 1: 9, 2: 3}, {0: 8, 1: 9, 2: 4}, _records())
    positions = {0: 5}
    frames = frames_from_hub(batch, positions, b"a", {})
    assert [e["id"] for e in parse_frames(frames)] == ["0:6"]
    assert positions == {0: 8}  # moved past the other key's record too
    positions = {0: 6}
    assert frames_from_hub(batch, positions, None, {0: 6}) == result_event("0:8", b'{"n":2}')


def test_an_unreachable_broker_is_a_reason_to_end_not_an_error():
    settings = Settings.from_env({"FAUSTAPP_BROKER": f"kafka://127.0.0.1:{_closed_port()}"})

    async def scenario() -> str:
        reader = ResultReader(settings, "any-topic", None)
        try:
            await reader.open()
        except StreamUnavailable as exc:
            return str(exc)
        finally:
            await reader.close()
        return "opened"

    assert "Kafka" in asyncio.run(asyncio.wait_for(scenario(), 60))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
