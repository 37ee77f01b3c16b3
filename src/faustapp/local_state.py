"""Local RocksDB state that can be trusted after a crash, or is rebuilt from the changelog."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


class LocalStateGuard:
    """Knows whether the last worker on this data folder stopped cleanly.

    Under ``exactly_once`` a worker killed mid-transaction leaves writes in its local RocksDB that
    the broker aborted; Faust would resume from that local copy and keep them. Like Kafka Streams,
    faustapp then drops the local copy and restores it from the (committed) changelog.
    """

    def __init__(self, datadir: Path, tabledir: Path, app_id: str) -> None:
        self.tabledir = tabledir
        self.marker = datadir / f"{app_id}.running"

    def on_start(self, *, exactly_once: bool) -> bool:
        """Wipe untrusted local state; returns True when it did."""
        wiped = False
        if self.marker.exists() and exactly_once and self.tabledir.exists():
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
