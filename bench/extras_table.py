"""The extras table printed after the main one."""

from __future__ import annotations


def format_extras(report: dict) -> str:
    """The extras as a Markdown table with the conditions each figure was measured under."""

    def num(value: object, fmt: str = ",.0f") -> str:
        return "-" if value is None else format(value, fmt)  # type: ignore[arg-type]

    state = report.get("state", {})
    restart, restore = state.get("restart", {}), state.get("restore", {})
    two, lat = report.get("two_workers", {}), report.get("latency", {})
    lines = [
        f"extras ({report['size']}); load average {report.get('load_average_before')} before, "
        f"{report.get('load_average_after')} after",
        "",
        "| measurement | value | notes |",
        "|---|---:|---|",
    ]
    if "skipped" in lat:
        lines.append(f"| 1m end-to-end latency | - | skipped: {lat['skipped']} |")
    else:
        lines += [
            f"| 1m latency beyond window end + grace, p50 ms | {num(lat.get('p50_ms'))} | "
            f"{num(lat.get('results'))} results at {num(lat.get('achieved_rate'))}/s "
            f"(target {num(lat.get('target_rate'))}/s, from {lat.get('max_rate_source')}) for "
            f"{num(lat.get('seconds'))}s (the first window closing after "
            f"{num(lat.get('warmup_s'))}s of load); consume time; flush interval 500 ms |",
            f"| 1m latency, p99 ms | {num(lat.get('p99_ms'))} | max {num(lat.get('max_ms'))} "
            f"ms; by result CreateTime p50/p99 {num(lat.get('create_ts_p50_ms'))}/"
            f"{num(lat.get('create_ts_p99_ms'))} ms"
            + (f"; ERROR {lat['error']}" if lat.get("error") else "")
            + " |",
        ]
    keys = state.get("keys")
    lines += [
        f"| RSS with {num(keys)} open keys, VmRSS MiB | {num(state.get('vmrss_mib'))} | "
        f"VmHWM {num(state.get('vmhwm_mib'))} MiB; open windows {num(state.get('open_windows'))}"
        f" ({'ok' if state.get('open_windows_ok') else 'NOT ' + str(keys)}); consumed in "
        f"{num(state.get('fill_s'), '.1f')}s"
        + (f"; ERROR {state['error']}" if state.get("error") else "")
        + " |",
        f"| restart on local RocksDB, s to health 200 | {num(restart.get('health_s'), '.2f')} | "
        f"to answering /api/sensors/<id> with count 1: {num(restart.get('query_s'), '.2f')}s; "
        f"SIGTERM stop took {num(state.get('first_stop', {}).get('shutdown_s'), '.1f')}s"
        + (f"; ERROR {restart['error']}" if restart.get("error") else "")
        + " |",
        f"| restore from changelog, s to health 200 | {num(restore.get('health_s'), '.2f')} | "
        f"{num(restore.get('changelog_records'))} changelog records, "
        f"{num(restore.get('records_per_s'))} records/s; answering after "
        f"{num(restore.get('query_s'), '.2f')}s; open windows "
        f"{num(restore.get('open_windows'))}"
        + (f"; ERROR {restore['error']}" if restore.get("error") else "")
        + " |",
        f"| two workers, 1m at_least_once, events/s | {num(two.get('events_per_s'))} | "
        f"one worker {num(two.get('one_worker_events_per_s'))}/s (main table), speedup "
        f"{num(two.get('speedup'), '.2f')}; partitions {two.get('partitions_per_worker')}; "
        f"reprocessed {num(two.get('reprocessed'))}; output ok "
        f"{two.get('checks', {}).get('ok')}"
        + (f"; ERROR {two['error']}" if two.get("error") else "")
        + " |",
    ]
    return "\n".join(lines)
