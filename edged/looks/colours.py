"""Named colours of an object without weights: the pixels of a central part of its crop (clothing for a person,
the body for a vehicle), each named from its hue, saturation and value, and the names that cover the most of it.

Names: black, white, grey, red, orange, yellow, green, blue, purple, pink, brown. The thresholds are on OpenCV's
HSV (H 0..179, S and V 0..255): dark (V < 50) is black whatever the hue, washed out (S < 45) is white, grey or
black by V, and the rest by hue, with dark oranges called brown and light reds and purples pink.
"""

from __future__ import annotations

import cv2
import numpy as np

NAMES = ("black", "white", "grey", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown")
MIN_SHARE = 0.2  # a name must cover this much of the part to be named
# Hue bounds (OpenCV's 0..179) and the name up to each bound.
_HUES = ((8, "red"), (22, "orange"), (34, "yellow"), (85, "green"), (130, "blue"), (155, "purple"), (170, "pink"),
         (180, "red"))
# Central parts per kind of object, as shares of the box (x0, x1, y0, y1): a person's upper body, a vehicle's body.
PERSON_PART = (0.3, 0.7, 0.2, 0.5)
BODY_PART = (0.2, 0.8, 0.3, 0.7)
SIZE = (16, 24)  # the part is shrunk to this (width, height) before it is named


def _table() -> np.ndarray:
    """Every (H, S, V) at 8 levels of S and V and every hue -> the index of its name."""
    table = np.zeros((180, 32, 32), np.uint8)
    hue_names = np.zeros(180, np.uint8)
    low = 0
    for bound, name in _HUES:
        hue_names[low:bound] = NAMES.index(name)
        low = bound
    for s in range(32):
        for v in range(32):
            sat, val = s * 8 + 4, v * 8 + 4
            if val < 50:
                table[:, s, v] = NAMES.index("black")
            elif sat < 45:
                table[:, s, v] = NAMES.index("white" if val > 190 else "grey" if val > 80 else "black")
            else:
                table[:, s, v] = hue_names
                if val < 150:
                    table[8:22, s, v] = NAMES.index("brown")
                if sat < 120 and val > 170:
                    table[np.r_[0:8, 155:180], s, v] = NAMES.index("pink")
    return table


TABLE = _table()


def part_of(label: str) -> tuple[float, float, float, float]:
    return PERSON_PART if label == "person" else BODY_PART


def name_colours(part: np.ndarray) -> tuple[str, ...]:
    """``part``: BGR uint8 (already the central part, shrunk). The names covering at least ``MIN_SHARE`` of it,
    most first."""
    hsv = np.asarray(cv2.cvtColor(part, cv2.COLOR_BGR2HSV), np.uint8)
    index = TABLE[hsv[..., 0], hsv[..., 1] >> 3, hsv[..., 2] >> 3]
    counts = np.bincount(index.ravel(), minlength=len(NAMES))
    order = np.argsort(-counts, kind="stable")
    total = index.size
    return tuple(NAMES[i] for i in order if counts[i] >= MIN_SHARE * total)
