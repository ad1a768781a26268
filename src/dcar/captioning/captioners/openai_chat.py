"""``openai:MODEL[@BASE_URL]``: any OpenAI-compatible chat-completions server with image input.

vLLM, Ollama (``/v1``), LM Studio, llama.cpp's server and SGLang all speak this schema, so one
client covers InternLM-XComposer, Qwen2-VL, LLaVA and friends. Images go as base64 JPEG data URLs.
The base URL comes from the spec or ``DCAR_OPENAI_BASE_URL`` / ``OPENAI_BASE_URL``. Standard library
HTTP only.

The API key goes only to the host it was given for: the key in the variable named by
``--api-key-env`` to the spec's host; ``OPENAI_API_KEY`` (or ``DCAR_OPENAI_API_KEY``) without it only
to ``api.openai.com``; no key to any other host. A key is never sent over plain http to a host
other than this machine (loopback) unless ``--allow-insecure-key`` says so, and redirects are never
followed (a redirect could carry the key's header to another host): the error names the target.
"""

from __future__ import annotations

import email.utils
import http.client
import ipaddress
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from dcar.captioning.captioners.base import CaptionerOptions, CaptionItem, Captioner, register
from dcar.captioning.failures import FatalCaptionerError, PermanentError, TransientError
from dcar.captioning.image_payload import jpeg_data_url

DEFAULT_BASE_URL = "http://localhost:8000/v1"
OPENAI_HOST = "api.openai.com"  # the host OPENAI_API_KEY is issued for
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
FATAL_STATUS = {401, 403, 404}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def parse_spec(rest: str) -> tuple[str, str]:
    """``MODEL@URL`` -> (model, base URL); the URL defaults from the environment."""
    model, sep, url = rest.rpartition("@")
    if not sep or not url.startswith(("http://", "https://")):
        model, url = rest, ""
    url = url or os.environ.get("DCAR_OPENAI_BASE_URL") or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    if not model:
        raise FatalCaptionerError(f"openai:{rest}: no model name (use openai:MODEL@http://host:port/v1)")
    return model, url.rstrip("/")


def extract_text(body: bytes) -> str:
    """The assistant's text from a chat-completions reply; a garbled reply is transient."""
    try:
        reply = json.loads(body)
        content = reply["choices"][0]["message"]["content"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError) as err:
        raise TransientError(f"malformed chat-completions reply ({type(err).__name__}: {err})") from None
    if isinstance(content, list):  # some servers return content parts
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise TransientError("malformed chat-completions reply (content is not text)")
    return content


@register("openai")
class OpenAIChatCaptioner(Captioner):
    """Chat-completions client: one request per (image, question), temperature 0 by default."""

    def __init__(
        self,
        spec: str,
        rest: str,
        options: CaptionerOptions | None = None,
        temperature: float = 0.0,
        max_side: int = 1024,
        api_key: str | None = None,
    ) -> None:
        super().__init__(spec)
        options = options or CaptionerOptions()
        self.model, self.base_url = parse_spec(rest)
        self.timeout, self.max_new_tokens = options.timeout, options.max_new_tokens
        self.temperature, self.max_side = temperature, max_side
        self.api_key = api_key or key_for(self.base_url, options)
        check_key_transport(self.base_url, self.api_key, options.allow_insecure_key)
        self.requests = 0  # HTTP requests sent (for the report)
        self._count_lock = threading.Lock()

    def identity(self) -> str:
        return f"openai:{self.model}@{self.base_url}|t={self.temperature}|n={self.max_new_tokens}|side={self.max_side}"

    def answer(self, item: CaptionItem, question: str) -> str:
        if item.image is None:
            raise PermanentError(f"{item.key}: no image file")
        payload = {
            "model": self.model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": question},
                        {"type": "image_url", "image_url": {"url": jpeg_data_url(str(item.image), self.max_side)}},
                    ],
                }
            ],
            "max_tokens": self.max_new_tokens,
            "temperature": self.temperature,
        }
        return extract_text(self._post("/chat/completions", payload))

    def _post(self, path: str, payload: dict) -> bytes:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            self.base_url + path, data=json.dumps(payload).encode("utf-8"), headers=headers, method="POST"
        )
        with self._count_lock:
            self.requests += 1
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as err:
            if 300 <= err.code < 400:
                target = err.headers.get("Location", "?")
                raise FatalCaptionerError(
                    f"{self.base_url}{path}: HTTP {err.code} redirect to {target} not followed (the API key goes only "
                    f"to {urlsplit(self.base_url).hostname}); give the final URL in the captioner spec"
                ) from None
            detail = _error_detail(err)
            if err.code in RETRYABLE_STATUS:
                wait = parse_retry_after(err.headers.get("Retry-After"))
                raise TransientError(f"HTTP {err.code}{detail}", wait) from None
            if err.code in FATAL_STATUS:
                hint = "check the model name, URL and API key"
                raise FatalCaptionerError(f"{self.base_url}{path}: HTTP {err.code}{detail} ({hint})") from None
            raise PermanentError(f"HTTP {err.code}{detail}") from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, http.client.HTTPException) as err:
            reason = getattr(err, "reason", err)
            raise TransientError(f"{self.base_url}: {type(reason).__name__}: {reason}") from None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Return every 3xx as an error instead of following it (urllib would copy the Authorization
    header to the new location, whatever its host)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 - urllib's hook
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


def key_for(base_url: str, options: CaptionerOptions) -> str | None:
    """The API key for ``base_url``'s host, or None (see module docstring)."""
    host = urlsplit(base_url).hostname or ""
    if options.api_key_env:
        key = os.environ.get(options.api_key_env)
        if not key:
            raise FatalCaptionerError(f"--api-key-env {options.api_key_env}: that environment variable is not set or empty")
        return key
    if host == OPENAI_HOST:
        return os.environ.get("DCAR_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")
    return None


def check_key_transport(base_url: str, key: str | None, allow_insecure: bool) -> None:
    """Refuse to send ``key`` in clear text over the network."""
    parts = urlsplit(base_url)
    if key and parts.scheme == "http" and not is_loopback(parts.hostname or "") and not allow_insecure:
        raise FatalCaptionerError(
            f"{base_url}: refusing to send the API key over plain http to {parts.hostname}; "
            "use https, or pass --allow-insecure-key"
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _error_detail(err: urllib.error.HTTPError) -> str:
    try:
        text = err.read(300).decode("utf-8", "replace").strip()
    except Exception:  # the body is only a hint for the message
        text = ""
    return f": {' '.join(text.split())[:200]}" if text else ""
