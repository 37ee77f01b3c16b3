"""The checks of a faustapp run on the clicks topic: its output against the expected results, and
its counters, which for a regrouped pipeline live under several routers.

A regrouped pipeline (``page-stats-1m`` by page, ``item-activity-5m`` by item under
``trending-items``) runs in two halves: the input router ``clicks`` judges lateness and forwards
each event to the repartition topic, the router ``<pipeline>-repartition`` windows what it reads
there (forwarded events plus watermarks). ``trending-items`` adds a third router,
``trending-items-ranking``, which reads the final (item, window) rows of ``item-activity-5m``.
"""

from __future__ import annotations

import asyncio

from bench.broker import read_records
from bench.clicks_expect import ITEM_ACTIVITY, PAGE_STATS, SESSIONS, TRENDING, check_clicks
from bench.common import metric
from bench.consumers import Consumer, Context

REGROUPED = {PAGE_STATS: (PAGE_STATS,), TRENDING: (ITEM_ACTIVITY, TRENDING)}
"""Regrouped pipeline -> the stages behind its repartition topics (their routers are named
``<stage>-repartition``, except the ranking's ``<stage>-ranking``)."""


def routers_of(pipeline: str) -> list[str]:
    """The routers (``pipeline`` label of events_in) a pipeline's records pass through."""
    stages = REGROUPED.get(pipeline, ())
    return [f"{stage}-ranking" if stage == TRENDING else f"{stage}-repartition" for stage in stages]


def is_regrouped(pipeline: str | None) -> bool:
    return pipeline in REGROUPED


def clicks_checks(
    ctx: Context, consumer: Consumer, out_topic: str, start: dict[int, int], final: dict
) -> dict[str, object]:
    """Output and counters of a run of ``consumer`` on the clicks topic."""
    pipeline, source = str(consumer.pipeline), consumer.dataset
    total = ctx.data_of(consumer).total
    expected = ctx.use_expected(consumer)
    records, reached = asyncio.run(
        read_records(ctx.bootstrap, out_topic, start=start, expected=len(expected), timeout=60)
    )
    checks = check_clicks(pipeline, records, expected)
    facts = getattr(expected, "facts", {})
    counters: dict[str, float] = {
        "events_in": metric(final, "faustapp_events_in_total", pipeline=source),
        "dead_letters": metric(final, "faustapp_dead_letters_total", pipeline=source),
        "rekeyed": metric(final, "faustapp_rekeyed_events_total", pipeline=source),
        "replayed": metric(final, "faustapp_replayed_events_total", pipeline=source),
        "windows_closed": metric(final, "faustapp_windows_closed_total", pipeline=pipeline),
    }
    for router in routers_of(pipeline):
        counters[f"events_in[{router}]"] = metric(
            final, "faustapp_events_in_total", pipeline=router
        )
        counters[f"dead_letters[{router}]"] = metric(
            final, "faustapp_dead_letters_total", pipeline=router
        )
        counters[f"replayed[{router}]"] = metric(
            final, "faustapp_replayed_events_total", pipeline=router
        )
    stages = REGROUPED.get(pipeline, (pipeline,))
    for stage in dict.fromkeys((*stages, pipeline)):
        counters[f"accepted[{stage}]"] = metric(
            final, "faustapp_events_accepted_total", pipeline=stage
        )
        counters[f"late_events[{stage}]"] = metric(
            final, "faustapp_late_events_total", pipeline=stage
        )
    ok = (
        counters["events_in"] == total
        and counters["windows_closed"] == len(expected)
        and all(counters[name] == 0 for name in counters if name.startswith(("dead", "rekeyed")))
        and all(counters[name] == 0 for name in counters if name.startswith(("replayed", "late")))
    )
    what = (
        "; metrics: every record read, no dead letters, no re-keying, no replays, no late "
        "events, windows_closed equals the expected results"
    )
    if pipeline == SESSIONS:
        ok = ok and counters[f"accepted[{SESSIONS}]"] == total
        what += ", every record accepted"
    elif pipeline == PAGE_STATS:
        # Both halves count under the pipeline's label: the input router what it forwards,
        # the repartition router what it windows (every click, the closers included).
        ok = ok and counters[f"accepted[{PAGE_STATS}]"] in (total, 2 * total)
        ok = ok and counters[f"events_in[{PAGE_STATS}-repartition]"] >= total
        what += (
            ", every click forwarded and read back from the repartition topic (with the "
            "watermarks), accepted = every click once per half (faustapp counts both halves "
            "under the pipeline's label; once is accepted too)"
        )
    else:
        with_item = facts["events_with_item"]
        ok = ok and counters[f"accepted[{ITEM_ACTIVITY}]"] in (with_item, 2 * with_item)
        ok = ok and counters[f"events_in[{ITEM_ACTIVITY}-repartition]"] >= with_item
        ok = ok and counters[f"accepted[{TRENDING}]"] == facts["item_windows"]
        what += (
            ", every click with an item forwarded and read back (accepted once per half, or "
            "once), every final (item, 5-minute window) row of item-activity-5m ranked once"
        )
    checks["what"] = str(checks["what"]) + what
    checks["read_committed"] = True
    checks["counters"] = counters
    checks["expected_facts"] = facts
    checks["counters_ok"] = ok
    checks["ok"] = bool(checks["ok"]) and ok and reached
    return checks
