"""The captioner's API key goes only to the host it was given for: not to other hosts, not over
plain http to another machine, not across a redirect (two local servers, the first redirecting)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from chat_server import ChatServer
from cli_helpers import run_cli

from dcar.captioning import load_captioner
from dcar.captioning.captioners.base import CaptionerOptions
from dcar.captioning.failures import FatalCaptionerError

KEY = "sk-secret-123"


class Redirector:
    """A server that answers every POST with a redirect to ``target`` and records the headers it got."""

    def __init__(self, target: str, status: int) -> None:
        self.authorizations: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.authorizations.append(self.headers.get("Authorization"))
                self.send_response(status)
                self.send_header("Location", target + self.path.removeprefix("/v1"))
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def second():
    server = ChatServer()
    yield server
    server.close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_the_key_never_follows_a_redirect_to_another_host(second, flower_entries, tmp_path, monkeypatch, capsys, status):
    # "localhost" vs 127.0.0.1: another host name for the same machine, as another host would be.
    first = Redirector(second.url.replace("127.0.0.1", "localhost"), status)
    monkeypatch.setenv("MY_VLM_KEY", KEY)
    images = tmp_path / "images"
    try:
        code, _, err = run_cli(["data", "build", "--images", str(images), "--out", str(tmp_path / "o.json"),
                                "--captioner", f"openai:m@{first.url}", "--api-key-env", "MY_VLM_KEY",
                                "--no-progress", "--attempts", "1"], capsys)
    finally:
        first.close()
    assert first.authorizations and first.authorizations[0] == f"Bearer {KEY}"  # the configured host got it
    assert second.requests == []  # the redirect target got nothing: not the key, not the image
    assert code == 2 and f"HTTP {status} redirect to" in err and "not followed" in err
    assert len(err.strip().splitlines()) == 1 and KEY not in err


def test_openai_api_key_goes_only_to_api_openai_com(second, flower_entries, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("DCAR_OPENAI_API_KEY", KEY)
    captioner = load_captioner(second.spec(), CaptionerOptions(timeout=5.0))
    assert captioner.api_key is None
    assert load_captioner("openai:gpt-4o@https://api.openai.com/v1").api_key == KEY


@pytest.mark.parametrize("url", ["http://example.org/v1", "http://10.1.2.3:8000/v1", "http://[2001:db8::1]/v1"])
def test_no_key_over_plain_http_to_another_machine_without_the_flag(url, monkeypatch):
    monkeypatch.setenv("MY_VLM_KEY", KEY)
    with pytest.raises(FatalCaptionerError, match="refusing to send the API key over plain http"):
        load_captioner(f"openai:m@{url}", CaptionerOptions(api_key_env="MY_VLM_KEY"))
    allowed = load_captioner(f"openai:m@{url}", CaptionerOptions(api_key_env="MY_VLM_KEY", allow_insecure_key=True))
    assert allowed.api_key == KEY
    for local in ("http://127.0.0.1:9/v1", "http://localhost:9/v1", "http://[::1]:9/v1", "https://example.org/v1"):
        assert load_captioner(f"openai:m@{local}", CaptionerOptions(api_key_env="MY_VLM_KEY")).api_key == KEY


def test_a_named_key_variable_that_is_not_set_is_an_error(monkeypatch):
    monkeypatch.delenv("NOPE_KEY", raising=False)
    with pytest.raises(FatalCaptionerError, match="--api-key-env NOPE_KEY: that environment variable is not set"):
        load_captioner("openai:m@http://127.0.0.1:9/v1", CaptionerOptions(api_key_env="NOPE_KEY"))
