"""Render a :class:`~dcar.world.sample.Sample` to an RGB image (Pillow + numpy only).

Speed matters (pretraining draws every batch on the fly): textures for backgrounds, patterns and
style noise are built once per image size and cached; a sample costs a crop, a few polygon fills
and one masked paste.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from dcar.world.domains import get_domain
from dcar.world.sample import Sample
from dcar.world.shapes import DRAWERS, POSE, Frame
from dcar.world.vocab import COLOURS

DEFAULT_SIZE = 64

# Position anchors as fractions of the image side; object radius per size, in 64-px units.
ANCHORS = {
    "center": (0.5, 0.5),
    "top left": (0.27, 0.27),
    "top right": (0.73, 0.27),
    "bottom left": (0.27, 0.73),
    "bottom right": (0.73, 0.73),
}
# World v2 is object-centric, as fine-grained photo sets are (FGVC, CUB, Flowers): one object in
# the centre at nearly one scale; position and size words in its captions are not grounded (as
# much of an MLLM caption is not). A supervised check (docs/world/v2/visibility.py, 1,000 steps of
# 128 labelled images) showed why: objects placed and sized as in v1 left the tower 20% of the
# siblings, placement fixed 45%, size fixed 39%, both 74%; and even named positions moving the
# object by 3 px on top of its +-3 px jitter kept the training loss at 3.8 where the centred object
# reached 2.1 (step 250). A real CLIP learnt translation and scale from 400 M photos; a CPU recipe
# of an hour cannot, so the world spares it that and keeps the traits to learn.
ANCHORS_V2 = {name: (0.5, 0.5) for name in ANCHORS}
RADIUS = {"small": 9.0, "large": 15.0}
RADIUS_V2 = {"small": 21.0, "large": 22.0}
COPY_SCALE = {1: 1.0, 2: 0.8, 3: 0.7}  # copies shrink so that a group stays near its anchor


@lru_cache(maxsize=None)
def _noise_tile(side: int, channels: int, seed: int) -> np.ndarray:
    """Unit Gaussian noise, twice the image side, cropped at random offsets per sample."""
    return np.random.default_rng(seed).standard_normal((2 * side, 2 * side, channels)).astype(np.float32)


@lru_cache(maxsize=None)
def _background_tile(name: str, side: int) -> Image.Image:
    """A 2x-side background texture; samples crop a side x side window from it."""
    n = 2 * side
    if name == "white":
        arr = np.full((n, n, 3), (236, 236, 230), np.float32)
    elif name == "dark":
        arr = np.full((n, n, 3), (36, 38, 48), np.float32)
    elif name == "sky":  # vertical gradient, repeated so any vertical crop spans most of it
        t = (np.abs((np.arange(n) % side) / side - 0.5) * 2)[:, None, None]
        arr = (np.array((105, 160, 225)) * (1 - t) + np.array((205, 228, 250)) * t) * np.ones((1, n, 1))
        arr = arr.astype(np.float32)
    elif name in ("grass", "sand"):
        base = (74, 128, 58) if name == "grass" else (212, 188, 138)
        spread = 26.0 if name == "grass" else 14.0
        noise = _noise_tile(side, 1, 11 if name == "grass" else 12)
        # blotchy texture: coarse noise (2 px cells) plus fine grain
        coarse = np.repeat(np.repeat(noise[::2, ::2], 2, 0), 2, 1)[:n, :n]
        arr = np.array(base, np.float32) + spread * (0.7 * coarse + 0.3 * noise)
        if name == "grass":  # darker blade-like streaks
            arr[:, ::3] -= 10
    elif name in _V2_BACKGROUNDS:
        arr = _v2_background(name, side)
    else:
        raise KeyError(name)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


# Backgrounds only world v2's downstream catalogs use (pretraining never shows them).
_V2_BACKGROUNDS = ("moss", "soil", "water", "dusk", "paper")


def _v2_background(name: str, side: int) -> np.ndarray:
    n = 2 * side
    noise = _noise_tile(side, 1, 20 + _V2_BACKGROUNDS.index(name))
    coarse = np.repeat(np.repeat(noise[::4, ::4], 4, 0), 4, 1)[:n, :n]
    if name == "moss":
        return np.array((58, 92, 40), np.float32) + 30.0 * (0.8 * coarse + 0.2 * noise)
    if name == "soil":
        return np.array((96, 70, 48), np.float32) + 22.0 * (0.6 * coarse + 0.4 * noise)
    if name == "water":  # horizontal ripples
        y = np.arange(n)[:, None, None]
        return np.array((40, 110, 150), np.float32) + 18.0 * np.sin(y / 3.0 + 2 * coarse) + 6 * noise
    if name == "dusk":  # orange-to-violet vertical gradient
        t = ((np.arange(n) % side) / side)[:, None, None]
        return (np.array((235, 150, 90)) * (1 - t) + np.array((90, 70, 140)) * t) * np.ones((1, n, 1), np.float32)
    return np.array((224, 212, 182), np.float32) + 8.0 * noise  # paper


# How strongly a pattern marks the fill (1 = v1). World v2 keeps patterns visible but faint beside
# the dark trait marks, which full-strength stripes hid (docs/world/v2.md, "Patterns").
PATTERN_CONTRAST_V2 = 0.4


@lru_cache(maxsize=None)
def _pattern_texture(colour: str, pattern: str, side: int, contrast: float = 1.0) -> Image.Image:
    """The object's fill: its colour, plain, with diagonal stripes, or with a dot grid."""
    rgb = np.array(COLOURS[colour], np.float32)
    arr = np.broadcast_to(rgb, (side, side, 3)).copy()
    y, x = np.mgrid[0:side, 0:side]
    unit = max(1, round(side / 64))
    fade = (lambda mark: mark) if contrast == 1.0 else (lambda mark: rgb + contrast * (mark - rgb))  # v1: exact
    if pattern == "striped":
        arr[((x + y) // (2 * unit)) % 2 == 0] = fade(rgb * 0.55)
    elif pattern == "dotted":
        arr[((x // unit) % 4 < 2) & ((y // unit) % 4 < 2)] = fade(rgb * 0.45 + 140)
    elif pattern != "plain":
        raise KeyError(pattern)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _detail_colour(colour: str) -> tuple[int, int, int]:
    return tuple(int(c * 0.3) for c in COLOURS[colour])


def _frames(s: Sample, side: int, rng: np.random.Generator) -> list[Frame]:
    """Where each copy of the object goes: a group of ``count`` around the position anchor."""
    scale = side / DEFAULT_SIZE
    v2 = get_domain(s.domain).version == 2
    ax, ay = (ANCHORS_V2 if v2 else ANCHORS)[s.position]
    cx = ax * side + rng.uniform(-2, 2) * scale
    cy = ay * side + rng.uniform(-2, 2) * scale
    radius = RADIUS_V2 if v2 else RADIUS
    r = radius[s.size] * scale * COPY_SCALE[s.count]
    max_rot, can_mirror = POSE[s.meta]
    phase = rng.uniform(0, 2 * math.pi)
    spread = {1: 0.0, 2: 1.05, 3: 1.15}[s.count] * r
    frames = []
    for k in range(s.count):
        a = phase + 2 * math.pi * k / s.count
        frames.append(Frame(
            cx + spread * math.cos(a), cy + spread * math.sin(a), r,
            rot=math.radians(rng.uniform(-max_rot, max_rot)),
            mirror=bool(can_mirror and rng.random() < 0.5),
        ))
    return frames


def render(s: Sample, size: int = DEFAULT_SIZE) -> Image.Image:
    """The sample's RGB image, ``size`` x ``size`` pixels (deterministic)."""
    rng = np.random.default_rng(s.nuisance)
    ox, oy = (int(v) for v in rng.integers(0, size, 2))
    canvas = _background_tile(s.background, size).crop((ox, oy, ox + size, oy + size))
    mask = Image.new("L", (size, size), 0)
    mdraw = ImageDraw.Draw(mask)
    draw = ImageDraw.Draw(canvas)
    dark = _detail_colour(s.colour)
    drawer = DRAWERS[s.meta]
    parts = [drawer(s.traits, f) for f in _frames(s, size, rng)]
    for body, _ in parts:
        for _, pts in body:
            mdraw.polygon(pts, fill=255)
    contrast = PATTERN_CONTRAST_V2 if get_domain(s.domain).version == 2 else 1.0
    canvas.paste(_pattern_texture(s.colour, s.pattern, size, contrast), (0, 0), mask)
    for body, detail in parts:
        for _, pts in body:
            draw.polygon(pts, outline=dark)
        for prim in detail:
            if prim[0] == "poly":
                draw.polygon(prim[1], fill=dark)
            else:
                draw.line(prim[1], fill=dark, width=prim[2], joint="curve")
    return _apply_style(canvas, s, size, rng)


def _apply_style(img: Image.Image, s: Sample, size: int, rng: np.random.Generator) -> Image.Image:
    style = get_domain(s.domain).style
    if style.tint_strength == 0 and style.noise == 0 and style.blur == 0:
        return img
    if style.blur:
        img = img.filter(ImageFilter.GaussianBlur(style.blur * size / 96))
    arr = np.asarray(img, dtype=np.float32)
    if style.tint_strength:
        arr = arr * (1 - style.tint_strength) + np.array(style.tint, np.float32) * style.tint_strength
    if style.noise:
        ox, oy = (int(v) for v in rng.integers(0, size, 2))
        arr = arr + style.noise * _noise_tile(size, 3, 13)[oy:oy + size, ox:ox + size]
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def render_array(s: Sample, size: int = DEFAULT_SIZE) -> np.ndarray:
    """``render`` as a ``[size, size, 3]`` uint8 array."""
    return np.asarray(render(s, size))
