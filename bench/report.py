"""The summary of each consumer's runs and the table printed at the end of the benchmark."""

from __future__ import annotations

import statistics

from bench.common import describe_machine
from bench.consumers import Consumer

TOPIC_OF = {
    "sensors": "sensor-readings",
    "trades": "trades",
    "logs": "app-logs",
    "clicks": "clicks",
}


def summarize(consumer: Consumer, runs: list[dict]) -> dict:
    """One row of the table: the median and range over the rounds, correct only if every run was."""
    rates = [r["events_per_s"] for r in runs if r["events_per_s"] is not None]
    startups = [r["startup_s"] for r in runs if r["startup_s"] is not None]
    peaks = [r["peak_rss_mib"] for r in runs if r["peak_rss_mib"] is not None]
    return {
        "id": consumer.id,
        "consumer": consumer.label,
        "kind": consumer.kind,
        "pipeline": consumer.pipeline,
        "guarantee": consumer.guarantee if consumer.kind != "raw" else None,
        "dataset": consumer.dataset,
        "events_per_s_median": round(statistics.median(rates)) if rates else None,
        "events_per_s_min": round(min(rates)) if rates else None,
        "events_per_s_max": round(max(rates)) if rates else None,
        "startup_s_median": round(statistics.median(startups), 2) if startups else None,
        "peak_rss_mib_max": round(max(peaks), 1) if peaks else None,
        "correct": bool(runs) and all(r["correct"] for r in runs),
        "what_was_checked": runs[0]["checks"].get("what") if runs else None,
        "runs": runs,
    }


def with_ratios(rows: list[dict]) -> list[dict]:
    """Each row's median events/s over that of the raw client row on the same topic."""
    raw = {
        row["dataset"]: row["events_per_s_median"]
        for row in rows
        if row["kind"] == "raw" and row["events_per_s_median"]
    }
    for row in rows:
        floor = raw.get(row["dataset"])
        median = row["events_per_s_median"]
        row["ratio_to_raw"] = round(median / floor, 3) if floor and median else None
    return rows


def _use_line(data: dict) -> str:
    sessions = (
        f", {data['sessions']:,} sessions over {data['event_time_span_s'] / 3600:.1f} h of "
        f"event time, {data['items']:,} items"
        if "sessions" in data
        else ""
    )
    return (
        f"data {data['use']}: {data['records']:,} records + {len(data['closer_keys'])} closers, "
        f"{data['keys']:,} keys{sessions}, mean value {data['mean_value_bytes']} bytes; "
        f"produced in {data['produce_seconds']:.1f}s ({data['produce_records_per_s']:,}/s)"
    )


def format_table(report: dict) -> str:
    """The main table as Markdown, headed by the machine, broker, data and code measured."""
    data = report["data"]
    lines = [
        describe_machine(report["machine"]),
        f"broker: {report['broker']}",
        f"data: {data['readings']:,} readings + {len(data['closer_keys'])} closers, "
        f"{data['sensors']:,} sensors, {data['partitions']} partitions, "
        f"{data['event_rate_per_s']:g} readings/s of event time over "
        f"{data['event_time_span_s']:.0f}s, disorder <= {data['disorder_ms']} ms, "
        f"grace {data['grace_ms']} ms; produced in {data['produce_seconds']:.1f}s "
        f"({data['produce_records_per_s']:,}/s)"
        + (f"; mean value {data['mean_value_bytes']} bytes" if "mean_value_bytes" in data else ""),
        *(_use_line(use) for use in report.get("data_uses", {}).values()),
        f"rounds: {report['rounds']} (consumers alternate within each round); "
        f"code {report['code']['git_head']} src {report['code']['src_sha256_at_start']}"
        + (" (src/ CHANGED during the run)" if report["code"].get("src_changed_during_run") else "")
        + f"; load average at start {report['machine']['load_average_at_start']}",
        "",
        "| consumer | topic | events/s (median) | min-max | x raw client, same topic | "
        "start-up s | peak RSS MiB | correct |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]

    def num(value: float | None, fmt: str = ",.0f") -> str:
        return "-" if value is None else format(value, fmt)

    for row in report["rows"]:
        lines.append(
            f"| {row['consumer']} | {TOPIC_OF.get(row.get('dataset'), '-')} | "
            f"{num(row['events_per_s_median'])} | "
            f"{num(row['events_per_s_min'])}-{num(row['events_per_s_max'])} | "
            f"{num(row.get('ratio_to_raw'), '.3f')} | "
            f"{num(row['startup_s_median'], '.2f')} | {num(row['peak_rss_mib_max'], '.0f')} | "
            f"{'yes' if row['correct'] else 'NO'} |"
        )
    return "\n".join(lines)


def format_notes(report: dict) -> list[str]:
    """Notes under the table: how the rows of regrouped pipelines were measured."""
    regrouped = [row for row in report["rows"] if any(run.get("regrouped") for run in row["runs"])]
    if not regrouped:
        return []
    lines = ["", f"note: {report['method']['regrouped_rows']}."]
    for row in regrouped:
        runs = [run for run in row["runs"] if run.get("records_read_per_s_all_routers")]
        if not runs:
            continue
        total = report["data_uses"][row["dataset"]]["records_in_topic"]
        measured = statistics.median(run["events_measured"] / total for run in runs)
        every = statistics.median(total / run["processing_s"] for run in runs)
        all_rate = statistics.median(run["records_read_per_s_all_routers"] for run in runs)
        read = statistics.median(run["events_in_all_routers"] for run in runs)
        share = [
            run["input_read_s"] / run["processing_s"]
            for run in runs
            if run.get("input_read_s") is not None and run.get("processing_s")
        ]
        lines.append(
            f"- {row['pipeline']}: {row['events_per_s_median'] or 0:,} input clicks/s counts "
            f"the {measured:.0%} of the clicks read after the first observation; the others "
            f"are windowed within the measured time too, and all {total:,} over that time give "
            f"{every:,.0f}/s (the two bound the rate); the routers read {read:,.0f} records in "
            f"all ({all_rate:,.0f}/s)"
            + (
                f"; the last input click was read at {statistics.median(share):.0%} of the "
                "measured time"
                if share
                else ""
            )
        )
    return lines


def short_checks(checks: dict) -> str:
    """Why a run was not correct, in one line of the progress output."""
    keys = (
        "error",
        "first_log_error",
        "missing",
        "unexpected",
        "duplicates",
        "mismatched",
        "counters_ok",
    )
    return ", ".join(f"{k}={checks[k]}" for k in keys if k in checks) or str(checks)[:300]
