"""One run of a faustapp worker on one pipeline (or on the default deployment's pipelines),
observed through /metrics, and the checks of its output topics and counters."""

from __future__ import annotations

import asyncio
import shutil
import time
import traceback
import uuid
from dataclasses import replace

from bench.bookkeeping import cpu_seconds, finish_run, timings
from bench.broker import end_offsets, read_records
from bench.checks import check_alerts, check_windows, faustapp_window
from bench.clicks_checks import clicks_checks, is_regrouped
from bench.clicks_data import CLICKS
from bench.common import (
    http_text,
    log_problems,
    metric,
    parse_metrics,
    peak_rss_mib,
    samples,
    terminate,
)
from bench.consumers import SENSORS, Consumer, Context
from bench.uses_expect import check_use_windows
from bench.worker import Worker

POLL_S = 0.1
STOP_TIMEOUT_S = 15.0  # a clean stop takes ~1-2 s; SIGKILL after this


def run_faustapp(ctx: Context, consumer: Consumer, round_no: int) -> dict:
    """A fresh worker on one pipeline until every partition's stream time reaches its closer
    (a regrouped pipeline: until every input record was read and every expected result
    emitted: its stream time gauges are shared by its two halves); a deployment of several
    pipelines until that holds for every one of them."""
    dataset, source = ctx.data_of(consumer), consumer.dataset
    pipelines = consumer.checked_pipelines
    assert pipelines
    regrouped = is_regrouped(consumer.pipeline)
    target = len(ctx.use_expected(consumer)) if regrouped else 0
    total, partitions = dataset.total, dataset.spec.partitions
    start_offsets = {
        pipeline: asyncio.run(end_offsets(ctx.bootstrap, f"{ctx.prefix}{pipeline}"))
        for pipeline in pipelines
    }
    app_id = f"bench-{consumer.id}-r{round_no}-{uuid.uuid4().hex[:6]}"
    data_dir = ctx.work / app_id
    worker = Worker(
        ctx,
        app_id,
        data_dir,
        ctx.prefix,
        app_id,
        guarantee=consumer.guarantee,
        pipeline=consumer.pipeline,  # None: FAUSTAPP_PIPELINES unset, the default deployment
    )
    log_path = worker.log_path
    url = f"{worker.base}/metrics"
    closer_s = dataset.closer_ts / 1000
    broker_cpu0 = cpu_seconds(ctx.broker_pid)
    worker.start()
    proc, spawn = worker.proc, worker.spawn
    first: tuple[float, float] | None = None
    last: tuple[float, float] | None = None
    input_read: float | None = None
    first_all = 0.0
    run_info: dict[str, object] = {}
    final: dict = {}
    peak = cpu = None
    problem = None
    checks: dict[str, object] = {}
    try:
        deadline = spawn + ctx.run_timeout
        next_poll = progress_at = time.monotonic()
        progress: tuple = ()
        seen: dict[str, object] = {}
        run_info["progress_at_end"] = seen
        while True:
            now_mono = time.monotonic()
            if now_mono >= deadline:
                problem = f"not finished within {ctx.run_timeout:.0f}s"
                break
            if first is None and now_mono - spawn > ctx.startup_timeout:
                problem = f"no event processed within {ctx.startup_timeout:.0f}s of start"
                break
            if first is not None and now_mono - progress_at > ctx.stall_s:
                problem = f"stalled: no progress for {ctx.stall_s:.0f}s"
                break
            next_poll += POLL_S
            asked = time.monotonic()
            text = http_text(url, timeout=5)
            now = (asked + time.monotonic()) / 2
            if text is None:
                if proc.poll() is not None:
                    problem = f"worker exited with {proc.returncode} before finishing"
                    break
            else:
                metrics = parse_metrics(text)
                events = metric(metrics, "faustapp_events_in_total", pipeline=source)
                read_all = metric(metrics, "faustapp_events_in_total")  # every router
                if first is None and events > 0:
                    first, first_all = (now, events), read_all
                times = {
                    pipeline: dict(
                        sorted(
                            (labels.get("partition"), value)
                            for labels, value in samples(
                                metrics, "faustapp_stream_time_seconds", pipeline=pipeline
                            )
                        )
                    )
                    for pipeline in pipelines
                }
                closed = {
                    pipeline: metric(metrics, "faustapp_windows_closed_total", pipeline=pipeline)
                    for pipeline in pipelines
                }
                state = (events, read_all, repr(closed), repr(times))
                if state != progress:
                    progress, progress_at = state, now
                    one = len(pipelines) == 1
                    seen.update(
                        events_in=events,
                        events_in_all_routers=read_all,
                        windows_closed=closed[pipelines[0]] if one else closed,
                        stream_time_s=times[pipelines[0]] if one else times,
                    )
                if input_read is None and events >= total:
                    input_read = now
                if regrouped:
                    done = events >= total and closed[pipelines[0]] >= target
                else:
                    done = events >= total and all(
                        len(at) == partitions and all(abs(v - closer_s) < 1e-3 for v in at.values())
                        for at in times.values()
                    )
                if done:
                    last, final = (now, events), metrics
                    break
            time.sleep(max(0.0, next_poll - time.monotonic()))
        peak, cpu = peak_rss_mib(proc.pid), cpu_seconds(proc.pid)
        if last is not None:
            checks = _deployment_checks(ctx, consumer, start_offsets, final)
    except Exception as exc:  # keep the other runs going; the row shows the failure
        problem = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    finally:
        returncode, shutdown_s = terminate(proc, STOP_TIMEOUT_S)
        shutil.rmtree(data_dir, ignore_errors=True)
    if final and not checks:
        checks = {"ok": False}
    if not final:
        checks = {"ok": False, "error": problem or "no metrics"}
    elif problem:
        checks = {**checks, "ok": False, "error": problem}
    if problem:
        found = log_problems(log_path, limit=1)["first_errors"]
        checks["first_log_error"] = found[0] if found else None
    run = timings(
        spawn,
        first[0] if first else None,
        last[0] if last else None,
        first[1] if first else 0,
        last[1] if last else 0,
    )
    run["shutdown_s"] = round(shutdown_s, 2)
    run["app_id"] = app_id
    run["regrouped"] = regrouped
    if first is not None and input_read is not None:
        run["input_read_s"] = round(input_read - first[0], 3)
    run.update(run_info)
    if final:
        read_all = metric(final, "faustapp_events_in_total")
        run["events_in_all_routers"] = int(read_all)
        if run.get("processing_s"):
            run["records_read_per_s_all_routers"] = round(
                (read_all - first_all) / run["processing_s"], 1
            )
        batch_sum = metric(final, "faustapp_batch_seconds_sum", pipeline=source)
        batch_count = metric(final, "faustapp_batch_seconds_count", pipeline=source)
        run["batches"] = int(batch_count)
        run["batch_seconds_total"] = round(batch_sum, 3)
        run["mean_batch_ms"] = round(1000 * batch_sum / batch_count, 2) if batch_count else None
    return finish_run(run, checks, peak, returncode, log_path, ctx, broker_cpu0, cpu=cpu)


def _deployment_checks(
    ctx: Context, consumer: Consumer, start: dict[str, dict[int, int]], final: dict
) -> dict[str, object]:
    """One pipeline's checks, or those of each pipeline of a deployment with their sums."""
    if not consumer.pipelines:
        pipeline = str(consumer.pipeline)
        return _faustapp_checks(ctx, consumer, f"{ctx.prefix}{pipeline}", start[pipeline], final)
    each = {
        pipeline: _faustapp_checks(
            ctx,
            replace(consumer, pipeline=pipeline, pipelines=()),
            f"{ctx.prefix}{pipeline}",
            start[pipeline],
            final,
        )
        for pipeline in consumer.pipelines
    }
    checks: dict[str, object] = {
        "ok": all(c["ok"] for c in each.values()),
        "what": "one worker with FAUSTAPP_PIPELINES unset; each pipeline's output topic and "
        "metrics checked as in its own row: "
        + "; ".join(f"{p}: {c['what']}" for p, c in each.items()),
        "counters_ok": all(c["counters_ok"] for c in each.values()),
    }
    for key in ("missing", "unexpected", "duplicates", "mismatched"):
        checks[key] = sum(int(c.get(key, 0)) for c in each.values())  # type: ignore[arg-type]
    checks["not_ok"] = [p for p, c in each.items() if not c["ok"]]
    checks["pipelines"] = each
    return checks


def _faustapp_checks(
    ctx: Context, consumer: Consumer, out_topic: str, start: dict[int, int], final: dict
) -> dict[str, object]:
    pipeline, source = consumer.pipeline, consumer.dataset
    if source == CLICKS:
        return clicks_checks(ctx, consumer, out_topic, start, final)
    total = ctx.data_of(consumer).total
    counters = {
        "events_in": metric(final, "faustapp_events_in_total", pipeline=source),
        "events_accepted": metric(final, "faustapp_events_accepted_total", pipeline=pipeline),
        "dead_letters": metric(final, "faustapp_dead_letters_total", pipeline=source),
        "late_events": metric(final, "faustapp_late_events_total", pipeline=pipeline),
        "rekeyed": metric(final, "faustapp_rekeyed_events_total", pipeline=source),
        "windows_closed": metric(final, "faustapp_windows_closed_total", pipeline=pipeline),
    }
    if source != SENSORS:
        expected = ctx.use_expected(consumer)
        records, reached = asyncio.run(
            read_records(ctx.bootstrap, out_topic, start=start, expected=len(expected), timeout=60)
        )
        checks = check_use_windows(str(pipeline), records, expected)
        expected_closed = len(expected)
    elif pipeline == "sensor-alerts":
        alerts, borderline = ctx.expect.alerts
        records, reached = asyncio.run(
            read_records(
                ctx.bootstrap, out_topic, start=start, expected=len(alerts) or None, timeout=60
            )
        )
        checks = check_alerts(records, alerts, borderline)
        checks["what"] = (
            "alerts topic holds exactly the readings the oracle finds more than 4 stddev from "
            "their sensor's mean over [ts - 5 min, ts] (>= 20 readings), each once"
        )
        expected_closed = len(alerts)
    else:
        expected = {
            "sensor-stats-1m": lambda: ctx.expect.tumbling_1m,
            "sensor-stats-5m": lambda: ctx.expect.hopping_5m,
            "sensor-sessions": lambda: ctx.expect.sessions,
        }[pipeline]()
        records, reached = asyncio.run(
            read_records(ctx.bootstrap, out_topic, start=start, expected=len(expected), timeout=60)
        )
        checks = check_windows(records, expected, faustapp_window)
        checks["what"] = {
            "sensor-stats-1m": "output holds exactly the expected (sensor, 1-minute window) "
            "results, each once: count/min/max exact, sum within 1e-9 relative",
            "sensor-stats-5m": "output holds exactly the expected (sensor, 5-minute window "
            "every minute) results, each once: count/min/max exact, sum within 1e-9 relative "
            "(quantiles not checked)",
            "sensor-sessions": "output holds exactly the expected sessions (gap 1 min, "
            "[first ts, last ts]) per sensor, each once: count/min/max exact, sum within 1e-9",
        }[pipeline]
        expected_closed = len(expected)
    checks["read_committed"] = True
    checks["counters"] = counters
    counters_ok = (
        counters["events_in"] == total
        and counters["events_accepted"] == total
        and counters["dead_letters"] == 0
        and counters["late_events"] == 0
        and counters["rekeyed"] == 0
        and counters["windows_closed"] == expected_closed
    )
    checks["counters_ok"] = counters_ok
    checks["what"] = str(checks["what"]) + (
        "; metrics: every record read and accepted, no dead letters, no late events, "
        "no re-keying, windows_closed equals the expected results"
    )
    checks["ok"] = bool(checks["ok"]) and counters_ok and reached
    return checks
