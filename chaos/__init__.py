"""Chaos suite: kill -9 workers, bounce the broker and wipe local state while sensor data flows,
then compare every output with an oracle computed from what was produced.

    python -m chaos.run --short                 # ~20,000 readings, 2 kills, both guarantees
    python -m chaos.run                         # 200,000 readings, 10 kills

The suite reuses the test helpers in ``tests/support`` (real broker, real worker processes, the
sensor oracle); this module puts that folder on ``sys.path`` so ``support`` imports work when the
package is run from the project root.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TESTS_DIR = PROJECT_ROOT / "tests"

if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))
