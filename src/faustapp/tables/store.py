"""Window state in a Faust table: one local RocksDB per partition plus its changelog topic.

Faust's ``table[key] = value`` takes the partition from the current event and queues the
changelog record in a buffer that an ``exactly_once`` commit does not wait for. The window engine
writes whole batches for an explicit partition instead, straight into the partition's transaction,
and keeps Faust's persisted-offset bookkeeping so recovery starts where the local copy ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator, Sequence

import faust
from aiokafka.structs import RecordMetadata
from faust.types import TP
from rocksdict import WriteBatch

from faustapp.producing import PartitionProducer


class TableStore:
    """Batch reads and writes of one table's partitions, with their changelog records."""

    def __init__(self, app: faust.App, table: faust.Table, producer: PartitionProducer) -> None:
        self.app = app
        self.table = table
        self.producer = producer

    @property
    def changelog_topic(self) -> str:
        """Name of the compacted topic that backs the table."""
        return self.table.changelog_topic.get_topic_name()

    def _db(self, partition: int):  # noqa: ANN202 - rocksdict.Rdict
        return self.table.data._db_for_partition(partition)

    def records(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """Every record of the partition in key order (Faust's own offset key included)."""
        yield from self._db(partition).items()

    def scan(self, partition: int, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Records whose key starts with ``prefix``."""
        for key, value in self._db(partition).items(from_key=prefix):
            if not key.startswith(prefix):
                break
            yield key, value

    async def write(
        self, partition: int, puts: Sequence[tuple[bytes, bytes | None]]
    ) -> list[Awaitable[RecordMetadata]]:
        """Apply puts (``None`` deletes) locally in one batch and queue their changelog records."""
        if not puts:
            return []
        batch = WriteBatch(raw_mode=True)
        for key, value in puts:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        self._db(partition).write(batch)
        topic = self.changelog_topic
        futures = []
        for key, value in puts:
            fut = await self.producer.send(
                topic, key, value, source_partition=partition, partition=partition
            )
            futures.append(fut)
        return futures

    def mark_persisted(self, partition: int, delivered: Sequence[RecordMetadata]) -> None:
        """Record how far the changelog holds this partition, as Faust's recovery expects."""
        offsets = [m.offset for m in delivered if m.topic == self.changelog_topic]
        if not offsets:
            return
        tp = TP(self.changelog_topic, partition)
        if self.app.in_transaction:
            self.app.tables.persist_offset_on_commit(self.table.data, tp, max(offsets))
        else:
            self.table.data.set_persisted_offset(tp, max(offsets))
