"""``openai:MODEL[@BASE_URL]``: any OpenAI-compatible chat-completions server with image input.

vLLM, Ollama (``/v1``), LM Studio, llama.cpp's server and SGLang all speak this schema, so one
client covers InternLM-XComposer, Qwen2-VL, LLaVA and friends. Images go as base64 JPEG data URLs.
The key comes from ``DCAR_OPENAI_API_KEY`` or ``OPENAI_API_KEY`` (none for local servers), the base
URL from the spec or ``DCAR_OPENAI_BASE_URL`` / ``OPENAI_BASE_URL``. Standard library HTTP only.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request

from dcar.captioning.captioners.base import CaptionerOptions, CaptionItem, Captioner, register
from dcar.captioning.failures import FatalCaptionerError, PermanentError, TransientError
from dcar.captioning.image_payload import jpeg_data_url

DEFAULT_BASE_URL = "http://localhost:8000/v1"
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
        self.api_key = api_key or os.environ.get("DCAR_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")
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
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as err:
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


def _error_detail(err: urllib.error.HTTPError) -> str:
    try:
        text = err.read(300).decode("utf-8", "replace").strip()
    except Exception:  # the body is only a hint for the message
        text = ""
    return f": {' '.join(text.split())[:200]}" if text else ""
