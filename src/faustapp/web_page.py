"""The built-in live page, its static assets, and the API's OpenAPI description."""

from __future__ import annotations

import faust

from faustapp.runtime import Deployment


def install(app: faust.App, deployment: Deployment) -> None:
    """Mount these views on ``app`` for what ``deployment`` runs."""
