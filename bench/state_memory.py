"""Memory of the window engine with many open keys, without Kafka: where each byte goes.

    python -m bench.state_memory                       # 4 partitions x 250,000 keys
    python -m bench.state_memory --keys 200000 --tracemalloc
    python -m bench.state_memory --rocksdb /tmp/state  # also writes each flush to RocksDB
    python -m bench.state_memory --restore /tmp/state  # rebuild from that RocksDB instead

Builds the sensor-stats-1m pipeline's engine (its declared spec, the default grace) per
partition, folds one reading per key (all in one still-open 1-minute window, like the bench's
keys extra) in batches of 1,000, and persists the write-behind cache every 100 batches the way
a flush does (values encoded; written to a RocksDB per partition with Faust's options when
``--rocksdb`` is given). Then prints RSS (VmRSS, VmHWM) and the bytes reachable from each
attribute of the partitions (objects shared between attributes counted once, in the first),
and by type; ``--tracemalloc`` adds the allocating lines.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any

import orjson

from faustapp.agents.sensors import stats_1m
from faustapp.tables.events import Event
from faustapp.tables.state import MARK_KEY, WindowSpec, encoded
from faustapp.windowed import PendingOutcome, PipelineSpec, partition_for

GRACE_MS = 10_000
BATCH = 1_000
FLUSH_EVERY = 100  # batches
T0 = 1_732_435_200_000


def rss() -> dict[str, float]:
    """VmRSS and VmHWM of this process, MiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = round(int(line.split()[1]) / 1024, 1)
    return out


def spec() -> PipelineSpec:
    """The sensor-stats-1m pipeline as the runtime builds it."""
    window = WindowSpec.of(stats_1m.windows, GRACE_MS, stats_1m.measures, where=stats_1m.where)
    return PipelineSpec("sensor-stats-1m", "sensor-stats-1m", "sensor_id", window)


def open_db(path: Path) -> Any:
    """A RocksDB opened with Faust's options for a table partition."""
    from faust.stores.rocksdb import RocksDBOptions

    path.mkdir(parents=True, exist_ok=True)
    return RocksDBOptions().open(path)


def fill(pipeline: PipelineSpec, keys: int, partitions: int, db_dir: Path | None) -> list[Any]:
    """One partition engine each, every key's reading folded in and flushed."""
    decode = stats_1m.source.schema.decode
    by_partition: list[list[int]] = [[] for _ in range(partitions)]
    for i in range(keys):
        by_partition[partition_for(f"k-{i:07d}", partitions)].append(i)
    parts, peak_pending = [], 0
    for p, indexes in enumerate(by_partition):
        db = open_db(db_dir / f"p{p}") if db_dir else None
        part = pipeline.new_partition([])
        pending, offset = PendingOutcome(), 0
        for b in range(0, len(indexes), BATCH):
            events = []
            for i in indexes[b : b + BATCH]:
                raw = orjson.dumps(
                    {"sensor_id": f"k-{i:07d}", "ts": T0 + (i * 50_000) // keys, "value": i % 1000}
                )
                record = decode(raw)
                events.append(Event(record.sensor_id, record.ts, record, offset))
                offset += 1
            pending.add(part.process(events, through_offset=offset - 1))
            if (b // BATCH + 1) % FLUSH_EVERY == 0 or b + BATCH >= len(indexes):
                peak_pending = max(peak_pending, len(pending.values))
                flush(pending, db)
                pending = PendingOutcome()
        if db is not None:
            db.close()
        parts.append(part)
    print(f"largest write-behind cache at a flush: {peak_pending:,} values")
    return parts


def flush(pending: PendingOutcome, db: Any) -> None:
    """What a flush does with the cache: encode every value, write them and the mark."""
    outcome = pending.outcome()
    puts = [(key, encoded(value)) for key, value in outcome.updates]
    if db is None:
        return
    from rocksdict import WriteBatch

    batch = WriteBatch(raw_mode=True)
    for key, value in puts:
        batch.put(key, value)
    batch.put(MARK_KEY, outcome.mark)
    db.write(batch)


def restore(pipeline: PipelineSpec, db_dir: Path, partitions: int) -> list[Any]:
    """Every partition rebuilt from its RocksDB, as a restarted worker does."""
    parts = []
    for p in range(partitions):
        db = open_db(db_dir / f"p{p}")
        parts.append(pipeline.new_partition(db.items()))
        db.close()
    return parts


def _skip(obj: object) -> bool:
    return isinstance(obj, type | ModuleType | FunctionType)


def reachable(roots: list[object], seen: set[int], by_type: Counter, count: Counter) -> int:
    """Bytes of the objects reachable from ``roots`` not in ``seen`` (then added to it)."""
    total, stack = 0, list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or _skip(obj):
            continue
        seen.add(id(obj))
        size = sys.getsizeof(obj)
        total += size
        name = type(obj).__name__
        by_type[name] += size
        count[name] += 1
        stack.extend(gc.get_referents(obj))
    return total


def breakdown(parts: list[Any], pipeline: PipelineSpec) -> None:
    """Bytes per attribute of the partitions, then per type."""
    seen: set[int] = set()
    by_type: Counter = Counter()
    count: Counter = Counter()
    reachable([pipeline, pipeline.window], seen, Counter(), Counter())  # shared, not per key
    attributes: dict[str, int] = {}
    names = [n for n in _attribute_names(parts[0]) if n != "spec"]
    for name in names:
        attributes[name] = reachable([getattr(part, name) for part in parts], seen, by_type, count)
    total = sum(attributes.values())
    print(f"\nbytes reachable from the partitions: {total / 2**20:,.1f} MiB")
    for name, size in sorted(attributes.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<24} {size / 2**20:10,.1f} MiB")
    print("by type (count, MiB, bytes each):")
    for name, size in by_type.most_common(14):
        print(f"  {name:<24} {count[name]:>10,} {size / 2**20:10,.1f} {size / count[name]:8.1f}")


def _attribute_names(part: Any) -> list[str]:
    names = list(getattr(part, "__dict__", {}))
    for klass in type(part).__mro__:
        names += [n for n in getattr(klass, "__slots__", ()) if n not in names]
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.state_memory")
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rocksdb", type=Path, help="write each flush to RocksDB under this")
    parser.add_argument("--restore", type=Path, help="rebuild from the RocksDB under this")
    parser.add_argument("--tracemalloc", action="store_true", help="also the allocating lines")
    parser.add_argument("--no-breakdown", action="store_true", help="RSS and times only")
    options = parser.parse_args(argv)
    gc.set_threshold(50_000, 20, 20)  # as the worker
    gc.freeze()
    pipeline = spec()
    if options.tracemalloc:
        tracemalloc.start(1)
    print(f"start: {rss()}")
    began = time.perf_counter()
    if options.restore:
        parts = restore(pipeline, options.restore, options.partitions)
        what = "restored"
    else:
        parts = fill(pipeline, options.keys, options.partitions, options.rocksdb)
        what = "filled"
    took = time.perf_counter() - began
    open_windows = sum(len(part.open) for part in parts)
    print(f"{what} {open_windows:,} open windows in {took:.2f} s: {rss()}")
    gc.collect()
    print(f"after gc.collect(): {rss()}")
    if options.tracemalloc:
        snapshot = tracemalloc.take_snapshot()
        tracemalloc.stop()
        stats = snapshot.statistics("lineno")
        print(f"\ntracemalloc: {sum(s.size for s in stats) / 2**20:,.1f} MiB traced; top lines:")
        for stat in stats[:14]:
            frame = stat.traceback[0]
            where = "/".join(Path(frame.filename).parts[-2:])
            print(f"  {where}:{frame.lineno:<5} {stat.size / 2**20:9,.1f} MiB {stat.count:>10,}")
    if not options.no_breakdown:
        breakdown(parts, pipeline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
