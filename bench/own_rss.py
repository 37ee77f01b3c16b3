"""A child process's own peak RSS, which it prints with its figures.

wait4's ru_maxrss is no use for a child of the benchmark: Linux carries the peak over exec, so it
reads at least the benchmark's own RSS at the fork. VmHWM belongs to the process's own memory.
Kept free of other imports so that importing it costs the child nothing.
"""

from __future__ import annotations

import contextlib
from pathlib import Path


def own_peak_rss_mib() -> float | None:
    """VmHWM (peak resident set size) of the calling process, in MiB."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None
