"""Local RocksDB state that can be trusted after a crash, or is rebuilt from the changelog."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


class LocalStateGuard:
    """Knows whether the last worker on this data folder stopped cleanly.

    A worker killed mid-flush can leave its local RocksDB ahead of the changelog: under
    ``exactly_once`` with writes the broker aborted, under ``at_least_once`` with writes whose
    changelog records never left. Resuming from that copy, the worker would skip the replayed
    events it already holds, so the changelog would miss them for good, and whichever worker
    restores the partition from the changelog next would lose them. Like Kafka Streams after an
    unclean stop, faustapp drops the local copy and restores it from the changelog.
    """

    def __init__(self, datadir: Path, tabledir: Path, app_id: str) -> None:
        self.tabledir = tabledir
        self.marker = datadir / f"{app_id}.running"

    def on_start(self) -> bool:
        """Wipe untrusted local state; returns True when it did."""
        wiped = False
        if self.marker.exists() and self.tabledir.exists():
            log.warning(
                "previous worker on %s did not stop cleanly: removing local table state, "
                "it will be restored from the changelog topics",
                self.tabledir,
            )
            shutil.rmtree(self.tabledir)
            self.tabledir.mkdir(parents=True, exist_ok=True)
            wiped = True
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        self.marker.write_text("running\n")
        return wiped

    def on_clean_stop(self) -> None:
        """Everything was committed: the local copy is good for the next start."""
        self.marker.unlink(missing_ok=True)
