"""Server-Sent Events of a pipeline's final results as they are committed."""

from __future__ import annotations

import faust

from faustapp.runtime import Deployment


def install(app: faust.App, deployment: Deployment) -> None:
    """Mount these views on ``app`` for what ``deployment`` runs."""
