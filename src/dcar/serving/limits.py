"""What the server accepts from a client: request body size, and uploaded images that decode safely.

An upload is refused with a 4xx and one line, never a 500: an oversize body (413, checked on the
declared length and again while the body streams in, so a chunked upload cannot slip past), an
empty file (400), a file that is not an image (415), an image whose declared size exceeds the pixel
limit, a decompression bomb (413), a truncated or corrupt image (422). Decoding reuses the
project's one robust decoder, :func:`dcar.data.images.load_image`.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

from PIL import Image

from dcar.data.images import UnreadableImage, load_image


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000  # about 8000 x 5000; a bigger upload is refused before decoding
    max_k: int = 100
    max_query_chars: int = 1000


class UploadRejected(Exception):
    """A client's upload that we refuse; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def decode_upload(data: bytes, filename: str, limits: Limits) -> Image.Image:
    """Bytes of an uploaded file -> RGB image, or :class:`UploadRejected` saying why not."""
    if not data:
        raise UploadRejected(400, f"{filename}: empty file")
    if len(data) > limits.max_upload_bytes:
        raise UploadRejected(413, f"{filename}: {len(data)} bytes exceeds the upload limit of {limits.max_upload_bytes}")
    try:
        # The pixel limit is checked on the header, before decoding: bombs never allocate.
        return load_image(io.BytesIO(data), max_pixels=limits.max_pixels)
    except UnreadableImage as err:
        reason = err.reason
        if reason == "not a recognised image format":
            raise UploadRejected(415, f"{filename}: not an image (JPEG, PNG, WebP, GIF, BMP, TIFF are accepted)") from None
        if "exceeds the limit" in reason or reason.startswith("decompression bomb"):
            raise UploadRejected(413, f"{filename}: image too large ({reason})") from None
        raise UploadRejected(422, f"{filename}: the image cannot be decoded ({reason})") from None


class BodyLimit:
    """ASGI middleware: answer 413 to a request body over ``max_bytes`` plus ``slack`` (room for
    the multipart framing around an upload of ``max_bytes``), declared or streamed."""

    def __init__(self, app, max_bytes: int, slack: int = 64 * 1024):
        self.app, self.max_bytes, self.limit = app, max_bytes, max_bytes + slack

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                return await _answer(send, 400, "invalid Content-Length header")
            if size > self.limit:
                return await _answer(send, 413, f"request body of {size} bytes exceeds the upload limit of {self.max_bytes} bytes")
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _answer(send, 413, f"request body exceeds the upload limit of {self.max_bytes} bytes")


class _TooLarge(Exception):
    pass


async def _answer(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
