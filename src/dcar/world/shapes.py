"""Object drawings: for each meta-category, the polygons of its body and its fine details.

Each drawer takes the subcategory's trait values and a :class:`Frame` (centre, radius, rotation,
mirror) and returns two lists of primitives in pixel coordinates:

- body: filled polygons; the renderer fills them with the colour/pattern texture and outlines them;
- detail: ``("poly", pts)`` filled or ``("line", pts, width)`` strokes in a dark shade of the
  object colour (centre discs, rings, gill bars, engines, chevrons, ...).

Local coordinates have the object radius as unit, x to the right and y down; traits change only
small parts, so siblings share the overall form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

Prim = tuple  # ("poly", flat_pts) or ("line", flat_pts, width)

_CIRCLE = np.stack([np.cos(np.linspace(0, 2 * np.pi, 14)[:-1]), np.sin(np.linspace(0, 2 * np.pi, 14)[:-1])], 1)


@dataclass(frozen=True)
class Frame:
    """Maps local object coordinates (unit = radius) to pixels."""

    cx: float
    cy: float
    r: float
    rot: float = 0.0  # radians
    mirror: bool = False

    def __post_init__(self) -> None:
        # One affine map (mirror, rotate, scale) applied as a matrix product: this runs for every
        # polygon of every image, so it must not build intermediate arrays.
        c, s = math.cos(self.rot) * self.r, math.sin(self.rot) * self.r
        m = np.array([[c, s], [-s, c]])
        if self.mirror:
            m[0] = -m[0]
        object.__setattr__(self, "_m", m)
        object.__setattr__(self, "_t", np.array([self.cx, self.cy]))

    def __call__(self, pts) -> list[float]:
        p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        return (p @ self._m + self._t).ravel().tolist()

    def width(self, w: float) -> int:
        """A stroke width of ``w`` radii, at least one pixel."""
        return max(1, int(round(w * self.r)))


def ellipse(cx: float, cy: float, ax: float, ay: float, angle: float = 0.0) -> np.ndarray:
    """A 13-gon approximating an ellipse in local coordinates."""
    c, s = math.cos(angle), math.sin(angle)
    return (_CIRCLE * (ax, ay)) @ np.array([[c, s], [-s, c]]) + (cx, cy)


def _mirror_x(pts) -> np.ndarray:
    return np.asarray(pts, dtype=np.float64) * [-1, 1]


def flower(t: dict[str, str], f: Frame) -> tuple[list[Prim], list[Prim]]:
    n = 5 if t["petals"] == "five" else 6
    body = []
    for i in range(n):
        a = 2 * math.pi * i / n - math.pi / 2
        if t["tips"] == "round":
            petal = ellipse(0.56 * math.cos(a), 0.56 * math.sin(a), 0.44, 0.25, a)
        else:  # pointed: a kite whose far end is a sharp tip
            ca, sa = math.cos(a), math.sin(a)
            petal = np.array([[0.12 * ca, 0.12 * sa], [0.5 * ca - 0.27 * sa, 0.5 * sa + 0.27 * ca],
                              [1.05 * ca, 1.05 * sa], [0.5 * ca + 0.27 * sa, 0.5 * sa - 0.27 * ca]])
        body.append(("poly", f(petal)))
    centre = 0.36 if t.get("centre") == "large" else 0.24  # v2's fourth trait
    detail: list[Prim] = [("poly", f(ellipse(0, 0, centre, centre)))]
    if t["ring"] == "inner":
        ring = ellipse(0, 0, 0.5, 0.5)
        detail.append(("line", f(np.vstack([ring, ring[:1]])), f.width(0.1)))
    return body, detail


def mushroom(t: dict[str, str], f: Frame) -> tuple[list[Prim], list[Prim]]:
    if t["cap"] == "dome":
        a = np.linspace(math.pi, 2 * math.pi, 9)
        cap = np.stack([0.9 * np.cos(a), -0.1 + 0.62 * np.sin(a)], 1)
    else:
        cap = np.array([[-0.92, -0.1], [-0.25, -0.62], [0.0, -0.9], [0.25, -0.62], [0.92, -0.1]])
    stem = np.array([[-0.18, -0.12], [0.18, -0.12], [0.2, 0.85], [-0.2, 0.85]])
    body = [("poly", f(cap)), ("poly", f(stem))]
    if t["base"] == "bulb":
        body.append(("poly", f(ellipse(0, 0.78, 0.38, 0.2))))
    detail: list[Prim] = []
    if t["annulus"] == "ring":
        detail.append(("poly", f([[-0.36, 0.14], [0.36, 0.14], [0.3, 0.3], [-0.3, 0.3]])))
    if t.get("spots") == "spots":  # v2's fourth trait: three dark spots on the cap
        for x, y in ((-0.45, -0.3), (0.0, -0.45), (0.45, -0.3)):
            detail.append(("poly", f(ellipse(x, y, 0.12, 0.1))))
    return body, detail


def fish(t: dict[str, str], f: Frame) -> tuple[list[Prim], list[Prim]]:
    body = [("poly", f(ellipse(0.12, 0, 0.66, 0.36)))]
    if t["tail"] == "forked":
        tail = [[-0.42, 0], [-0.98, -0.42], [-0.74, 0], [-0.98, 0.42]]
    else:
        a = np.linspace(math.radians(135), math.radians(225), 7)
        tail = np.vstack([[[-0.42, 0]], np.stack([-0.5 + 0.45 * np.cos(a), 0.45 * np.sin(a)], 1)])
    body.append(("poly", f(tail)))
    if t["dorsal"] == "fin":
        body.append(("poly", f([[-0.2, -0.3], [0.0, -0.7], [0.3, -0.3]])))
    detail: list[Prim] = [("poly", f(ellipse(0.56, -0.08, 0.08, 0.08)))]
    if t["gill"] == "bar":
        detail.append(("line", f([[0.36, -0.3], [0.36, 0.3]]), f.width(0.13)))
    if t.get("stripe") == "stripe":  # v2's fourth trait: a dark lateral line
        detail.append(("line", f([[-0.4, 0.04], [0.3, 0.04]]), f.width(0.1)))
    return body, detail


def beetle(t: dict[str, str], f: Frame) -> tuple[list[Prim], list[Prim]]:
    body = [("poly", f(ellipse(0, 0.15, 0.5, 0.66))), ("poly", f(ellipse(0, -0.58, 0.26, 0.22)))]
    detail: list[Prim] = []
    w = f.width(0.08)
    for y, dy in ((-0.1, -0.15), (0.2, 0.0), (0.5, 0.15)):  # six legs
        detail.append(("line", f([[0.45, y], [0.82, y + dy]]), w))
        detail.append(("line", f([[-0.45, y], [-0.82, y + dy]]), w))
    for side in (1, -1):
        end = [side * 0.42, -1.02]
        detail.append(("line", f([[side * 0.1, -0.76], end]), w))
        if t["antennae"] == "clubbed":
            detail.append(("poly", f(ellipse(end[0], end[1], 0.11, 0.11))))
    if t["horn"] == "horn":
        detail.append(("poly", f([[-0.1, -0.74], [0.0, -1.05], [0.1, -0.74]])))
    if t["seam"] == "seam":
        detail.append(("line", f([[0, -0.42], [0, 0.78]]), f.width(0.1)))
    if t.get("spots") == "spots":  # v2's fourth trait: two dark spots on the wing cases
        for x in (-0.25, 0.25):
            detail.append(("poly", f(ellipse(x, 0.3, 0.12, 0.12))))
    return body, detail


def airplane(t: dict[str, str], f: Frame) -> tuple[list[Prim], list[Prim]]:
    fuselage = np.array([[0, -0.98], [0.12, -0.75], [0.13, 0.7], [0.05, 0.92], [-0.05, 0.92],
                         [-0.13, 0.7], [-0.12, -0.75]])
    if t["wings"] == "straight":
        wing = np.array([[0.1, -0.16], [0.95, -0.1], [0.95, 0.1], [0.1, 0.16]])
        wing_y = lambda x: 0.0  # noqa: E731
    else:
        wing = np.array([[0.1, -0.24], [0.9, 0.3], [0.9, 0.48], [0.1, 0.1]])
        wing_y = lambda x: -0.07 + 0.68 * (x - 0.1)  # noqa: E731
    if t["tail"] == "flat":
        tail = np.array([[0.05, 0.62], [0.42, 0.72], [0.42, 0.86], [0.05, 0.84]])
    else:  # vee: steeply swept stabilisers
        tail = np.array([[0.05, 0.55], [0.36, 0.95], [0.26, 1.0], [0.03, 0.8]])
    body = [("poly", f(fuselage)), ("poly", f(wing)), ("poly", f(_mirror_x(wing))),
            ("poly", f(tail)), ("poly", f(_mirror_x(tail)))]
    xs = (0.45,) if t["engines"] == "two" else (0.33, 0.68)
    detail: list[Prim] = []
    for x in xs:
        for side in (1, -1):
            detail.append(("poly", f(ellipse(side * x, wing_y(x) + 0.02, 0.07, 0.13))))
    if t.get("cockpit") == "canopy":  # v2's fourth trait: a dark canopy behind the nose
        detail.append(("poly", f(ellipse(0, -0.6, 0.09, 0.18))))
    return body, detail


_SHIELD = np.array([[-0.75, -0.82], [0.75, -0.82], [0.75, 0.15], [0.66, 0.42], [0.46, 0.7],
                    [0.22, 0.88], [0.0, 0.97], [-0.22, 0.88], [-0.46, 0.7], [-0.66, 0.42], [-0.75, 0.15]])


def crest(t: dict[str, str], f: Frame) -> tuple[list[Prim], list[Prim]]:
    body = [("poly", f(_SHIELD))]
    chevron = np.array([[-0.72, 0.3], [0.0, -0.25], [0.72, 0.3], [0.72, 0.55], [0.0, 0.0], [-0.72, 0.55]])
    if t["chevron"] == "down":
        chevron = chevron * [1, -1] + [0, 0.3]
    detail: list[Prim] = [("poly", f(chevron))]
    if t["mark"] == "dot":
        detail.append(("poly", f(ellipse(0, -0.55, 0.15, 0.15))))
    else:
        detail.append(("poly", f([[-0.35, -0.63], [0.35, -0.63], [0.35, -0.47], [-0.35, -0.47]])))
    if t["border"] == "double":
        inner = _SHIELD * 0.78 + [0, -0.02]
        detail.append(("line", f(np.vstack([inner, inner[:1]])), f.width(0.08)))
    if t.get("crown") == "crown":  # v2's fourth trait: a three-pointed crown above the shield
        body.append(("poly", f([[-0.5, -0.82], [-0.5, -1.0], [-0.25, -0.88], [0.0, -1.05], [0.25, -0.88],
                                [0.5, -1.0], [0.5, -0.82]])))
    return body, detail


DRAWERS: dict[str, Callable[[dict[str, str], Frame], tuple[list[Prim], list[Prim]]]] = {
    "flower": flower,
    "mushroom": mushroom,
    "fish": fish,
    "beetle": beetle,
    "airplane": airplane,
    "crest": crest,
}

# Nuisance pose per meta-category: max rotation (degrees) and whether mirroring is allowed.
POSE: dict[str, tuple[float, bool]] = {
    "flower": (180.0, False),
    "mushroom": (8.0, True),
    "fish": (15.0, True),
    "beetle": (25.0, True),
    "airplane": (30.0, True),
    "crest": (0.0, False),
}
