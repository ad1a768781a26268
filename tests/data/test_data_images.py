from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from dcar.data.images import UnreadableImage, load_image
from dcar.errors import DataError

from data_helpers import save_image


@pytest.mark.parametrize(
    "mode,color",
    [("L", 128), ("1", 1), ("CMYK", (0, 255, 255, 0)), ("RGB", (10, 20, 30)), ("I;16", 65535), ("LA", (90, 255))],
)
def test_every_mode_becomes_rgb(tmp_path: Path, mode, color):
    fmt = {"CMYK": "JPEG", "I;16": "PNG", "LA": "PNG", "1": "PNG"}.get(mode, "PNG")
    path = save_image(tmp_path / f"x.{fmt.lower()}", color=color, mode=mode, fmt=fmt)
    im = load_image(path)
    assert im.mode == "RGB" and im.size == (8, 6)
    if mode == "I;16":
        assert im.getpixel((0, 0)) == (255, 255, 255)  # scaled from 16 bit, not clipped garbage
    if mode == "CMYK":
        r, g, b = im.getpixel((0, 0))
        assert r > 200 and g < 60 and b < 60  # C=0, M=Y=255: red


def test_alpha_is_composited_on_white(tmp_path: Path):
    im = Image.new("RGBA", (2, 1), (0, 0, 0, 0))  # fully transparent black ...
    im.putpixel((1, 0), (255, 0, 0, 255))  # ... next to an opaque red pixel
    im.save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.getpixel((0, 0)) == (255, 255, 255)
    assert out.getpixel((1, 0)) == (255, 0, 0)


def test_palette_with_transparency(tmp_path: Path):
    im = Image.new("P", (4, 4), 0)
    im.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    im.putpixel((1, 1), 1)
    im.save(tmp_path / "p.gif", transparency=0)
    out = load_image(tmp_path / "p.gif")
    assert out.getpixel((0, 0)) == (255, 255, 255)
    assert out.getpixel((1, 1)) == (0, 0, 255)


@pytest.mark.parametrize("real_format", ["PNG", "GIF"])
def test_extension_that_lies_is_sniffed(tmp_path: Path, real_format):
    path = save_image(tmp_path / "photo.jpg", fmt=real_format, color=(0, 200, 0))
    assert Image.open(path).format == real_format
    assert load_image(path).getpixel((0, 0)) == (0, 200, 0)


def test_exif_orientation_is_applied(tmp_path: Path):
    im = Image.new("RGB", (20, 10), (0, 0, 0))
    im.paste((255, 255, 255), (0, 0, 10, 10))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = load_image(tmp_path / "r.jpg")
    assert out.size == (10, 20)
    assert sum(out.getpixel((5, 2))) > 600 and sum(out.getpixel((5, 17))) < 100  # left half now on top


def test_truncated_file(tmp_path: Path):
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buf, format="JPEG")
    (tmp_path / "t.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(UnreadableImage, match="t.jpg") as info:
        load_image(tmp_path / "t.jpg")
    assert "truncated" in info.value.reason.lower()


def test_not_an_image_and_missing(tmp_path: Path):
    (tmp_path / "n.jpg").write_text("hello")
    with pytest.raises(UnreadableImage, match="not a recognised image format"):
        load_image(tmp_path / "n.jpg")
    with pytest.raises(DataError, match="file not found"):
        load_image(tmp_path / "absent.jpg")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_too_many_pixels(tmp_path: Path, monkeypatch):
    path = save_image(tmp_path / "big.png", size=(10, 10))
    with pytest.raises(UnreadableImage, match="exceeds the limit of 99"):
        load_image(path, max_pixels=99)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 60)  # 100 > 60: refused by our check
    with pytest.raises(UnreadableImage, match="exceeds"):
        load_image(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # 100 > 2 x 10: Pillow's own bomb error
    with pytest.raises(UnreadableImage, match="decompression bomb"):
        load_image(path)
