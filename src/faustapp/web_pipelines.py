"""Views over every declared pipeline: its description, a key's windows and results, top keys."""

from __future__ import annotations

import faust

from faustapp.runtime import Deployment


def install(app: faust.App, deployment: Deployment) -> None:
    """Mount these views on ``app`` for what ``deployment`` runs."""
