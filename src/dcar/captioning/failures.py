"""How a captioner call can fail, which decides what the builder does next.

- :class:`TransientError`: worth retrying (rate limit, server error, timeout, garbled reply);
- :class:`PermanentError`: this image will not work (unreadable file, request rejected): skip it;
- :class:`FatalCaptionerError`: no image will work (bad key, unknown model): stop the run; every
  finished caption is already in the cache, so a rerun resumes.
"""

from __future__ import annotations

from dcar.errors import DcarError


class CaptionError(Exception):
    """A captioner call failed for one image."""


class TransientError(CaptionError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds the server asked us to wait, if it said


class PermanentError(CaptionError):
    pass


class FatalCaptionerError(DcarError):
    pass
