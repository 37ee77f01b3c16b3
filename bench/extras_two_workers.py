"""Extra 5: two workers of one app id against one on the main pre-filled topic (1m,
at_least_once), with the output checked as in the main table."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Callable

from bench.broker import end_offsets, read_records
from bench.checks import check_windows, faustapp_window
from bench.common import metric, samples
from bench.consumers import Context
from bench.worker import PIPELINE, POLL_S, Worker


def run_two_workers(ctx: Context, one_worker_eps: float | None, say: Callable[[str], None]) -> dict:
    """The 1m at_least_once pipeline on the main topic with two workers of one app id."""
    dataset = ctx.dataset
    total, partitions = dataset.total, dataset.spec.partitions
    closer_s = dataset.closer_ts / 1000
    out_topic = f"{ctx.prefix}{PIPELINE}"
    start_offsets = asyncio.run(end_offsets(ctx.bootstrap, out_topic))
    app_id = f"bench-extras-two-{uuid.uuid4().hex[:6]}"
    workers = [
        Worker(ctx, app_id, ctx.work / f"{app_id}-{i}", ctx.prefix, f"{app_id}-{i}") for i in (1, 2)
    ]
    out: dict[str, object] = {"app_id": app_id, "one_worker_events_per_s": one_worker_eps}
    first = last = None
    events = 0.0
    try:
        for w in workers:
            w.start()
        spawn = min(w.spawn for w in workers)
        deadline = spawn + ctx.run_timeout
        stall_at, progress = time.monotonic(), None
        while time.monotonic() < deadline:
            if not all(w.alive() for w in workers):
                out["error"] = "a worker exited"
                break
            now = time.monotonic()
            got = [w.metrics() for w in workers]
            events = sum(
                metric(m, "faustapp_events_in_total", pipeline="sensors") for m in got if m
            )
            times: dict[str, float] = {}
            per_worker = []
            for m in got:
                mine = []
                for labels, value in samples(
                    m or {}, "faustapp_stream_time_seconds", pipeline=PIPELINE
                ):
                    times[labels.get("partition")] = value
                    mine.append(labels.get("partition"))
                per_worker.append(sorted(mine))
            if first is None and events > 0:
                first = now
            if "both_assigned_s" not in out and all(per_worker):
                out["both_assigned_s"] = round(now - spawn, 2)
                out["events_before_both_assigned"] = events
            if (events, tuple(sorted(times.items()))) != progress:
                progress, stall_at = (events, tuple(sorted(times.items()))), now
            if (
                events >= total
                and len(times) == partitions
                and all(abs(v - closer_s) < 1e-3 for v in times.values())
            ):
                last = now
                out["partitions_per_worker"] = per_worker
                break
            if first is not None and now - stall_at > ctx.stall_s:
                out["error"] = f"stalled for {ctx.stall_s:.0f}s"
                break
            time.sleep(POLL_S)
        else:
            out["error"] = "not finished in time"
    finally:
        out["stops"] = [w.stop() for w in workers]
        for w in workers:
            shutil.rmtree(w.data_dir, ignore_errors=True)
    out["events_in_sum"] = events
    out["reprocessed"] = max(0, int(events - total))
    if first is not None and last is not None and last > first:
        out["processing_s"] = round(last - first, 2)
        out["events_per_s"] = round(total / (last - first))
        if one_worker_eps:
            out["speedup"] = round(out["events_per_s"] / one_worker_eps, 2)
    if last is not None:
        expected = ctx.expect.tumbling_1m
        records, _ = asyncio.run(
            read_records(
                ctx.bootstrap, out_topic, start=start_offsets, expected=len(expected), timeout=60
            )
        )
        checks = check_windows(records, expected, faustapp_window)
        checks.pop("examples", None)
        out["checks"] = checks
    return out
