"""What a chaos run tells its reader: timestamped progress lines, the summary table and the
per-fault details with any problem found."""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter


class Log:
    """Timestamped progress lines on stdout."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.1f}s] {text}", flush=True)


def fault_summary(faults: list[dict]) -> str:
    """'12 (10 kill -9, 1 broker bounce, 1 wipe)'."""
    kinds = Counter(f["kind"] for f in faults)
    parts = [
        f"{kinds[k]} {label}"
        for k, label in (("kill", "kill -9"), ("broker", "broker restart"), ("wipe", "wipe"))
        if kinds[k]
    ]
    return f"{len(faults)} ({', '.join(parts)})"


def recovery_stats(faults: list[dict]) -> dict:
    """Median and max recovery over the faults (None where a fault never recovered)."""
    times = [f["recovery_s"] for f in faults if f.get("recovery_s") is not None]
    return {
        "median_s": round(statistics.median(times), 1) if times else None,
        "max_s": round(max(times), 1) if times else None,
        "unrecovered": sum(1 for f in faults if f.get("recovery_s") is None),
    }


def table(results: list[dict]) -> str:
    """The markdown summary table."""
    lines = [
        "| guarantee | faults injected | events | windows | lost | duplicated | wrong | repeats "
        "| recovery time per fault (median / max s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        faults = r.get("faults", [])
        rec = recovery_stats(faults)
        recovery = f"{rec['median_s']} / {rec['max_s']}"
        if rec["unrecovered"]:
            recovery += f" ({rec['unrecovered']} not recovered)"
        windows = r.get("windows")
        row = [
            r["guarantee"],
            fault_summary(faults),
            f"{r['events']:,}" if "events" in r else "-",
            f"{windows:,} (+{r.get('alerts', 0)} alerts)" if windows is not None else "-",
            *(str(r.get(k, "-")) for k in ("lost", "duplicated", "wrong", "repeats")),
            recovery,
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def details(result: dict) -> str:
    """Per-fault lines and any problem, for the console and the markdown file."""
    out = [f"\n{result['guarantee']} (seed {result['seed']}, prefix {result['prefix']}):"]
    for f in result.get("faults", []):
        who = f["victim"] or "broker"
        owned = f" owned {f['owned_partitions']}" if "owned_partitions" in f else ""
        out.append(
            f"  {f['n']:>2}. +{f['at_s']:>6}s {f['kind']:<6} {who}{owned}: down {f['down_s']}s, "
            f"healthy {f['healthy_s']}s, processing {f['resumed_s']}s"
            + (f", unexpected exits {len(f['unexpected_exits'])}" if f["unexpected_exits"] else "")
        )
    for name, check in result.get("outputs", {}).items():
        problems = {k: v for k, v in check["examples"].items() if v}
        out.append(
            f"  {name}: expected {check['expected']}, records {check['records']}, "
            f"lost {check['lost']}, duplicated {check['duplicated']}, wrong {check['wrong']}"
        )
        for kind, examples in problems.items():
            for example in examples[:5]:
                out.append(f"    {kind}: {json.dumps(example)[:400]}")
    if result.get("late"):
        out.append(f"  late records of our sensors: {result['late']}")
    if result.get("input", {}).get("missing") or result.get("input", {}).get("extra"):
        out.append(f"  input topic differs from what was meant: {result['input']}")
    if result.get("unexpected_exits"):
        out.append(f"  workers that exited by themselves: {len(result['unexpected_exits'])}")
    for name, scan in result.get("worker_logs", {}).items():
        if scan.get("crashes"):
            out.append(f"  {name}: {scan['crashes']} crash(es) in {scan['log']}, first:")
            out += [f"    {line}" for line in scan["first_crashes"][:2]]
    if result.get("error"):
        out.append(f"  ERROR: {result['error']}")
    return "\n".join(out)
