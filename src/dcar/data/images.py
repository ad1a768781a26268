"""Decode any image a dataset may hold into a PIL RGB image, or say clearly why not.

Real datasets contain greyscale and CMYK JPEGs, palette GIFs, PNGs with alpha, files whose
extension lies (a PNG saved as ``.jpg``), phone photos stored sideways with an EXIF orientation tag,
truncated downloads and the odd huge scan. :func:`load_image` turns all of them into an upright RGB
image or raises :class:`UnreadableImage`; callers skip that image and count it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dcar.errors import DataError
from dcar.files import special_kind

# Suffixes the image index and folder datasets treat as images (compared in lower case).
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".jfif"}
)

# Transparent pixels are composited on white, not dropped: product and clip-art images with a
# transparent background usually carry black (0, 0, 0) colour under alpha 0, and dropping alpha
# would show the object on black, far from how people (and caption writers) saw it.
ALPHA_BACKGROUND = (255, 255, 255)


class UnreadableImage(DataError):
    """An image file that cannot be decoded; the message names the path and the reason."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: unreadable image ({reason})")


def is_image_file(name: str | Path) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def load_image(path: str | Path, max_pixels: int | None = None) -> Image.Image:
    """Open ``path`` as an upright RGB image.

    The format is sniffed from the content (Pillow ignores the extension), EXIF orientation is
    applied, every mode (1, L, LA, P, PA, I, I;16, F, CMYK, YCbCr, LAB, RGBA, ...) becomes RGB,
    alpha is composited on white. Images with more than ``max_pixels`` pixels (default: Pillow's
    ``Image.MAX_IMAGE_PIXELS`` at call time) are refused before decoding, like decompression bombs.

    Raises:
        UnreadableImage: missing, not an image, truncated, corrupt or too large.
    """
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    try:
        if isinstance(path, (str, os.PathLike)):  # (a file object, e.g. an upload, is read as it is)
            mode = os.stat(path).st_mode
            if not stat.S_ISREG(mode):  # a named pipe would block the read forever
                raise UnreadableImage(path, "a folder" if stat.S_ISDIR(mode) else f"{special_kind(mode)}, not a regular file")
        with Image.open(path) as im:
            if limit is not None and im.width * im.height > limit:
                raise UnreadableImage(path, f"{im.width}x{im.height} pixels exceeds the limit of {limit}")
            im.load()  # decode now, inside the try: truncation surfaces here, not later
            im = _upright(im)
            return _to_rgb(im)
    except UnreadableImage:
        raise
    except FileNotFoundError:
        raise UnreadableImage(path, "file not found") from None
    except Image.DecompressionBombError as err:
        raise UnreadableImage(path, f"decompression bomb: {err}") from None
    except UnidentifiedImageError:
        raise UnreadableImage(path, "not a recognised image format") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        # Pillow reports truncated / corrupt data as OSError, SyntaxError or ValueError.
        raise UnreadableImage(path, f"{type(err).__name__}: {err}") from None


def _upright(im: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag; a broken EXIF block must not lose the image itself."""
    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 - malformed EXIF comes in many exception types
        return im


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode == "RGB":
        return im
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        im = _high_depth_to_l(im)
    if im.mode in ("LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        background = Image.new("RGBA", im.size, ALPHA_BACKGROUND + (255,))
        return Image.alpha_composite(background, im).convert("RGB")
    return im.convert("RGB")


def _high_depth_to_l(im: Image.Image) -> Image.Image:
    """16-bit / 32-bit / float greyscale to 8-bit: Pillow's own convert clips everything above 255
    to white, so scale by the data's range instead (16-bit PNGs use 0..65535)."""
    arr = np.asarray(im, dtype=np.float64)
    hi = float(arr.max()) if arr.size else 0.0
    if hi > 255.0:
        arr = arr * (255.0 / (65535.0 if hi <= 65535.0 else hi))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))  # 2-D uint8 -> mode L
