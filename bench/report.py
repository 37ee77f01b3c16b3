"""The summary of each consumer's runs and the table printed at the end of the benchmark."""

from __future__ import annotations

import statistics
from collections.abc import Callable

from bench.common import describe_machine
from bench.consumers import Consumer

ENGINE_NOTES = {
    "bytewax": "one worker; the input stops at the topic's end offsets and every window still "
    "open then closes (the closer readings' windows too, not judged); its event clock is kept "
    "per sensor; events/s from the first record decoded to the last window handed to the sink",
    "pathway": "one worker, streaming input, default minibatch timer (1.5 s); windowby keeps one "
    "time for the whole table, so no cutoff is set and results are an update stream "
    "(retractions and new rows), checked once added up; events/s counts the records after the "
    "first minibatch observed, up to the results of the minibatch with the last record (when "
    "one minibatch held every record, as at --quick size, all of them from the start of its "
    "run)",
}

TOPIC_OF = {
    "sensors": "sensor-readings",
    "trades": "trades",
    "logs": "app-logs",
    "clicks": "clicks",
}


def summarize(consumer: Consumer, runs: list[dict], cannot_run: str | None = None) -> dict:
    """One row of the table: the median and range over the rounds, correct only if every run was;
    a row that cannot run here has no runs, ``correct`` None and the reason."""
    rates = [r["events_per_s"] for r in runs if r["events_per_s"] is not None]
    startups = [r["startup_s"] for r in runs if r["startup_s"] is not None]
    peaks = [r["peak_rss_mib"] for r in runs if r["peak_rss_mib"] is not None]
    return {
        "id": consumer.id,
        "consumer": consumer.label,
        "kind": consumer.kind,
        "pipeline": consumer.pipeline,
        "pipelines": list(consumer.pipelines) or None,
        "guarantee": consumer.guarantee if consumer.kind != "raw" else None,
        "dataset": consumer.dataset,
        "events_per_s_median": round(statistics.median(rates)) if rates else None,
        "events_per_s_min": round(min(rates)) if rates else None,
        "events_per_s_max": round(max(rates)) if rates else None,
        "startup_s_median": round(statistics.median(startups), 2) if startups else None,
        "peak_rss_mib_max": round(max(peaks), 1) if peaks else None,
        "correct": None if cannot_run else bool(runs) and all(r["correct"] for r in runs),
        "cannot_run": cannot_run,
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
            f"{_range(row, num)} | "
            f"{num(row.get('ratio_to_raw'), '.3f')} | "
            f"{num(row['startup_s_median'], '.2f')} | {num(row['peak_rss_mib_max'], '.0f')} | "
            f"{_correct(row)} |"
        )
    return "\n".join(lines)


def _range(row: dict, num: Callable[[float | None], str]) -> str:
    if row["events_per_s_min"] is None:
        return "-"
    return f"{num(row['events_per_s_min'])}-{num(row['events_per_s_max'])}"


def _correct(row: dict) -> str:
    if row.get("cannot_run"):
        return "n/a"
    return "yes" if row["correct"] else "NO"


def failed(rows: list[dict]) -> list[dict]:
    """Rows that ran and were not correct (a row that cannot run here is not one)."""
    return [row for row in rows if not row.get("cannot_run") and not row["correct"]]


def format_notes(report: dict) -> list[str]:
    """Notes under the table: the rows that cannot run here and why, how the rows of the other
    engines and of regrouped pipelines were measured."""
    lines = [
        f"note: {row['consumer']}: cannot run here: {row['cannot_run']}"
        for row in report["rows"]
        if row.get("cannot_run")
    ]
    engines = [row for row in report["rows"] if row["kind"] in ENGINE_NOTES and row["runs"]]
    lines += [f"note: {row['consumer']}: {ENGINE_NOTES[row['kind']]}" for row in engines]
    lines += [
        f"note: {row['consumer']}: one worker with FAUSTAPP_PIPELINES unset runs every pipeline "
        "on each record (events/s counts input records once), timed until every pipeline's "
        "stream time reached the closer on every partition; each output topic checked as in "
        "its own row"
        for row in report["rows"]
        if row.get("pipelines") and row["runs"]
    ]
    lines += _sse_notes(report["rows"])
    lines = [""] + lines if lines else []
    regrouped = [row for row in report["rows"] if any(run.get("regrouped") for run in row["runs"])]
    if not regrouped:
        return lines
    lines += ["", f"note: {report['method']['regrouped_rows']}."]
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


def _sse_notes(rows: list[dict]) -> list[str]:
    """The cost of the SSE clients: the row's events/s against faustapp-1m-alo's."""
    base = next((row for row in rows if row["id"] == "faustapp-1m-alo"), None)
    lines = []
    for row in rows:
        if row["kind"] != "sse" or not row["runs"]:
            continue
        sse = row["runs"][-1].get("sse", {})
        cost = "no faustapp-1m-alo row in this run to compare with"
        if base and base["events_per_s_median"] and row["events_per_s_median"]:
            ratio = 1 - row["events_per_s_median"] / base["events_per_s_median"]
            cost = (
                f"costs {ratio:.1%} of faustapp-1m-alo's events/s in this run (negative: "
                "faster; goal: under 10 %)"
            )
        if base and base["runs"]:
            cpu = [statistics.median(r.get("cpu_s") or 0 for r in x["runs"]) for x in (row, base)]
            cost += f"; worker CPU {cpu[0]:.2f} s against {cpu[1]:.2f} s (median per run)"
        lines.append(
            f"note: {row['consumer']}: {cost}; {sse.get('answered_200')} of "
            f"{sse.get('clients')} streams open, each received "
            f"{sse.get('results_received_min')}-{sse.get('results_received_max')} of "
            f"{sse.get('results_expected_each')} results"
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
