"""A small local chat-completions server that misbehaves on request, for judge tests.

``FakeJudgeServer`` listens on 127.0.0.1 (a free port) in a thread and answers
``POST /v1/chat/completions``. The request's ``model`` picks the behaviour, so one server
serves every case and concurrent tests do not interfere:

- ``reply:<text>``: a normal completion whose content is ``<text>``
- ``slow:<seconds>``: waits, then replies "Score: 5"
- ``status:<code>``: that HTTP status every time (500, 503, 429, 401, ...)
- ``flaky:<code>:<k>``: that status for the first ``k`` requests of this model, then "Score: 9"
- ``garbage``: a 200 whose body is not JSON; ``nochoices``: JSON without ``choices``
- ``drop``: closes the connection without answering
- ``echo``: replies with the last message's text (to see what the judge sent)

``requests`` counts requests per model; ``peak`` is the most requests ever in flight at once.
Only for tests and examples: no auth, no streaming, one process.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeJudgeServer"]


class FakeJudgeServer:
    """``with FakeJudgeServer() as server: Judge(base_url=server.url, model="reply:Score: 7")``."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.in_flight = self.peak = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("content-length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                model = str(body.get("model", ""))
                with owner._lock:
                    owner.requests[model] += 1
                    count = owner.requests[model]
                    owner.in_flight += 1
                    owner.peak = max(owner.peak, owner.in_flight)
                try:
                    owner._answer(self, model, count, body)
                finally:
                    with owner._lock:
                        owner.in_flight -= 1

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _answer(self, h: BaseHTTPRequestHandler, model: str, count: int, body: dict) -> None:
        kind, _, arg = model.partition(":")
        if kind == "drop":
            h.close_connection = True
            h.connection.close()
            return
        if kind == "slow":
            time.sleep(float(arg or 5))
            return _send(h, 200, _completion("Score: 5"))
        if kind == "status":
            return _send(h, int(arg), b'{"error": "injected"}', {"Retry-After": "0"})
        if kind == "flaky":
            code, _, k = arg.partition(":")
            if count <= int(k or 1):
                return _send(h, int(code), b'{"error": "injected"}')
            return _send(h, 200, _completion("Score: 9"))
        if kind == "garbage":
            return _send(h, 200, b"<html>not json", {"Content-Type": "text/html"})
        if kind == "nochoices":
            return _send(h, 200, b'{"object": "chat.completion"}')
        if kind == "echo":
            messages = body.get("messages") or [{}]
            return _send(h, 200, _completion(str(messages[-1].get("content", ""))))
        return _send(h, 200, _completion(arg if kind == "reply" else "Score: 5"))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeJudgeServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _completion(text: str) -> bytes:
    return json.dumps({"object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}).encode()


def _send(h: BaseHTTPRequestHandler, code: int, payload: bytes, headers: dict | None = None) -> None:
    try:
        h.send_response(code)
        h.send_header("Content-Type", (headers or {}).get("Content-Type", "application/json"))
        h.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            if k != "Content-Type":
                h.send_header(k, v)
        h.end_headers()
        h.wfile.write(payload)
    except OSError:  # the client gave up (a timeout test)
        pass
