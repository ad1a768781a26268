"""A real OpenAI-compatible chat-completions server on 127.0.0.1 for the builder tests.

The server records every request (question, image hash) and answers through a ``behaviour``
function the test sets: a caption, an HTTP error (with headers), a slow answer or a garbled body.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30),
           "purple": (140, 30, 160), "orange": (240, 140, 20), "white": (250, 250, 250), "black": (5, 5, 5)}


@dataclass
class Request:
    question: str
    image: str  # sha256 of the decoded image bytes
    model: str
    authorization: str | None


@dataclass
class Reply:
    status: int = 200
    text: str | None = "A small flower with green leaves."
    body: bytes | None = None  # raw body instead of a chat-completions JSON
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Behaviour = Callable[[Request, int], Reply]  # (request, how many times this image+question came before)


class ChatServer:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.behaviour: Behaviour = lambda req, n: Reply()
        self._seen: dict[tuple[str, str], int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length))
                content = payload["messages"][0]["content"]
                question = next(p["text"] for p in content if p["type"] == "text")
                url = next(p["image_url"]["url"] for p in content if p["type"] == "image_url")
                assert url.startswith("data:image/jpeg;base64,")
                image = hashlib.sha256(base64.b64decode(url.split(",", 1)[1])).hexdigest()
                req = Request(question, image, payload["model"], self.headers.get("Authorization"))
                with server.lock:
                    server.requests.append(req)
                    n = server._seen.get((image, question), 0)
                    server._seen[(image, question)] = n + 1
                reply = server.behaviour(req, n)
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body
                if body is None:
                    body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text}}]}).encode()
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out first
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def spec(self, model: str = "tiny-vlm") -> str:
        return f"openai:{model}@{self.url}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def image_hash(path: str | Path) -> str:
    """The hash the server computes for an image the client sends."""
    from dcar.captioning.image_payload import jpeg_data_url

    return hashlib.sha256(base64.b64decode(jpeg_data_url(str(path)).split(",", 1)[1])).hexdigest()
