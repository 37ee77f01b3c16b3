"""A Server-Sent Events client for tests: reads a worker's stream in a thread of its own and
keeps every event and comment it saw, in order."""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field


@dataclass
class Event:
    """One event of the stream."""

    event: str
    data: str
    id: str | None = None


@dataclass
class SseReader:
    """GET ``path`` of ``base_url`` and parse what comes, until :meth:`close` or the end."""

    base_url: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    """The body of an answer that is not a stream (an error)."""
    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    ended: bool = False
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None
        self._answered = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._answered.wait(30):
            raise TimeoutError(f"{self.path}: no answer in 30 s")
        if self.error is not None and self.status == 0:
            raise self.error

    def _run(self) -> None:
        url = urllib.parse.urlsplit(self.base_url)
        try:
            self._conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
            self._conn.request("GET", self.path, headers=self.headers)
            resp = self._conn.getresponse()
            self.status = resp.status
            self.response_headers = dict(resp.getheaders())
            if not resp.getheader("Content-Type", "").startswith("text/event-stream"):
                self.body = resp.read()
                self._answered.set()
                return
            self._answered.set()
            self._parse(resp)
        except (OSError, http.client.HTTPException, ValueError, AttributeError) as exc:
            self.error = exc  # AttributeError: http.client read on after close() from the test
        finally:
            self.ended = True
            self._answered.set()

    def _parse(self, resp: http.client.HTTPResponse) -> None:
        fields: dict[str, str] = {}
        data: list[str] = []
        while True:
            raw = resp.readline()
            if not raw:
                return
            line = raw.decode().rstrip("\r\n")
            if line == "":
                if data or fields:
                    with self._lock:
                        self.events.append(
                            Event(fields.get("event", "message"), "\n".join(data), fields.get("id"))
                        )
                fields, data = {}, []
            elif line.startswith(":"):
                with self._lock:
                    self.comments.append(line[1:].strip())
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    data.append(value)
                else:
                    fields[name] = value

    def results(self) -> list[Event]:
        """The ``result`` events so far."""
        with self._lock:
            return [e for e in self.events if e.event == "result"]

    def wait_for(self, count: int, timeout: float) -> list[Event]:
        """Block until ``count`` results arrived (bounded); fail with what came otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.results()
            if len(got) >= count or (self.ended and len(got) < count):
                break
            time.sleep(0.2)
        got = self.results()
        assert len(got) >= count, (
            f"{len(got)} of {count} results after {timeout}s (ended={self.ended}, "
            f"error={self.error!r}, last events={self.events[-3:]})"
        )
        return got

    def close(self) -> None:
        """Disconnect, as a client that goes away does."""
        conn = self._conn
        if conn is not None and conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._thread.join(10)
