"""The client's limit: a bare aiokafka consumer that reads the topic and decodes every record.

Run as its own process (``python -m bench.raw_consumer ...``) so that its peak RSS is its own.
Prints one JSON line: records read and decoded, and the monotonic times (shared by every process
on the machine) of the first and last record decoded.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.own_rss import own_peak_rss_mib


async def consume(
    bootstrap: str, topic: str, expect: int, timeout: float, sum_field: str = "value"
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # Bigger fetches than the defaults (1 MiB per partition): this row is the ceiling.
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    count = decoded = 0
    first = last = None
    value_sum = 0.0
    try:
        partitions: set[int] = set()
        while not partitions and time.monotonic() < deadline:
            cluster = await consumer._client.fetch_all_metadata()
            partitions = cluster.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        loads = orjson.loads
        while count < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=20_000)
            for messages in batch.values():
                for message in messages:
                    reading = loads(message.value)
                    value_sum += reading[sum_field]
                    decoded += 1
                    if first is None:
                        first = time.monotonic()
                count += len(messages)
            if batch:
                last = time.monotonic()
    finally:
        await consumer.stop()
    return {
        "count": count,
        "decoded": decoded,
        "value_sum": value_sum,
        "first_event": first,
        "last_event": last,
        "timed_out": count < expect,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--expect", type=int, required=True, help="records in the topic")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--sum-field", default="value", help="numeric field every record has")
    options = parser.parse_args()
    result = asyncio.run(
        consume(
            options.bootstrap, options.topic, options.expect, options.timeout, options.sum_field
        )
    )
    result["peak_rss_mib"] = own_peak_rss_mib()
    print(orjson.dumps(result).decode(), flush=True)
    sys.exit(0 if not result["timed_out"] else 1)


if __name__ == "__main__":
    main()
