"""Bearer-token access to the HTTP API, and the headers one worker sends another."""

from __future__ import annotations

from faustapp.settings import Settings

FORWARDED_HEADER = "X-Faustapp-Forwarded"


def peer_headers(settings: Settings) -> dict[str, str]:
    """Headers of a request proxied to a peer worker: one hop only, and the API token if set."""
    headers = {FORWARDED_HEADER: "1"}
    if settings.api_token:
        headers["Authorization"] = f"Bearer {settings.api_token}"
    return headers


def install(app: object, settings: Settings) -> None:
    """Mount the token check (``FAUSTAPP_API_TOKEN``, ``FAUSTAPP_METRICS_TOKEN``) on ``app``."""
