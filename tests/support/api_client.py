"""Raw HTTP requests for tests of the API's tokens, description and page: any header, the path
sent as written, and streams left unread after their headers."""

from __future__ import annotations

import http.client
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import orjson

from support.workers import WorkerProcess


@dataclass
class Answer:
    """What the worker answered."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """A header by name, whatever its case."""
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None

    @property
    def content_type(self) -> str:
        """The media type without parameters."""
        return (self.header("Content-Type") or "").split(";")[0].strip()

    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.body)


def bearer(token: str | None) -> dict[str, str]:
    """The Authorization header of ``token`` (none for None)."""
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def get(
    base_url: str,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    method: str = "GET",
    timeout: float = 10.0,
    read_body: bool = True,
) -> Answer:
    """One request; ``read_body=False`` returns after the headers of a 200 (an event stream
    never ends), while an error's JSON body is always read."""
    url = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read() if read_body or resp.status != 200 else b""
        return Answer(resp.status, dict(resp.getheaders()), body)
    finally:
        conn.close()


def json_error(answer: Answer, status: int) -> dict:
    """Assert ``answer`` is faustapp's JSON error with ``status``; return its body."""
    assert answer.status == status, (answer.status, answer.body[:300])
    assert answer.content_type == "application/json", (answer.headers, answer.body[:300])
    body = answer.json()
    assert isinstance(body, dict) and set(body) == {"error", "status"}, body
    assert body["status"] == status and isinstance(body["error"], str) and body["error"], body
    return body


def wait_ready(
    worker: WorkerProcess,
    token: str | None = None,
    partitions: int | None = None,
    timeout: float = 120.0,
) -> dict:
    """Like ``WorkerProcess.wait_ready``, sending ``token`` (health may need one)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if not worker.alive():
            raise RuntimeError(f"worker exited early:\n{worker.log_tail()}")
        try:
            answer = get(worker.url, "/api/health", bearer(token), timeout=3)
        except OSError as exc:
            last = exc
        else:
            last = (answer.status, answer.body[:200])
            if answer.status == 200:
                body = answer.json()
                if partitions is None or len(body["active_partitions"]) == partitions:
                    return body
        time.sleep(0.5)
    raise TimeoutError(f"worker not ready after {timeout}s ({last}):\n{worker.log_tail()}")


def fill_path(template: str, parameters: list[dict], values: dict[str, str]) -> str:
    """An OpenAPI path with its parameters filled: ``values`` first, else the first enum value,
    else ``x``; each percent-encoded."""
    path = template
    for param in parameters:
        if param.get("in") != "path":
            continue
        name = param["name"]
        value = values.get(name) or (param.get("schema", {}).get("enum") or ["x"])[0]
        path = path.replace("{" + name + "}", urllib.parse.quote(str(value), safe=""))
    return path
