"""Images as the captioners need them: an RGB PIL image, or JPEG bytes for a request body."""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from pathlib import Path

from PIL import Image

from dcar.captioning.failures import PermanentError
from dcar.data.images import UnreadableImage, load_image


def open_rgb(path: str | Path) -> Image.Image:
    """The upright RGB image (any mode, EXIF orientation applied); an unreadable file is a
    :class:`PermanentError`: that image is skipped and reported."""
    try:
        return load_image(path)
    except UnreadableImage as err:
        raise PermanentError(str(err)) from None


@lru_cache(maxsize=32)  # the same image goes out once per question: encode it once
def jpeg_data_url(path: str, max_side: int = 1024, quality: int = 90) -> str:
    """``data:image/jpeg;base64,...`` of the image, the longest side at most ``max_side``
    (servers resize anyway; sending less saves bandwidth and upload time)."""
    im = open_rgb(path)
    if max_side and max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
