"""Where to look in a large frame: a crop around the motion, at (at least) the model's resolution.

A person 40 pixels tall in a 3840x2160 frame is 8 pixels tall once the whole frame is
letterboxed into a 416x416 input: too small to find. Cropped around where it moved,
at no less than the model's own input size in source pixels, it keeps most of its
pixels. Motion boxes are merged into one, grown by ``margin`` of their size, brought
to the model's aspect ratio, and kept inside the frame; when the crop would cover
most of the frame anyway, the whole frame is used.
"""

from __future__ import annotations

from typing import Literal

Crop = tuple[int, int, int, int]  # x, y, width, height in source pixels
WHOLE_FRAME_SHARE = 0.5  # a crop covering more than this share of the frame's area: use the whole frame


def regions_apply(policy: Literal["auto", "on", "off"] | str, width: int, height: int, dst_w: int,
                  dst_h: int) -> bool:
    """auto: regions for frames at least twice the model's input on both sides."""
    if policy == "off":
        return False
    if policy == "on":
        return True
    return width >= 2 * dst_w and height >= 2 * dst_h


def detect_region(motion: tuple[float, float, float, float] | None, width: int, height: int, dst_w: int, dst_h: int,
                  policy: str, margin: float) -> Crop | None:
    """Where in a ``width`` x ``height`` frame to detect: a crop around its ``motion`` when the ``policy`` (auto,
    on, off) applies to this frame, or None for the whole frame. The daemon's lanes and the bench both ask here."""
    if motion is None or not regions_apply(policy, width, height, dst_w, dst_h):
        return None
    return crop_for(motion, width, height, dst_w, dst_h, margin)


TILE_SHARE = 0.6  # each of two tiles covers this share of the frame's longer side (they overlap by a fifth)


def tiles(width: int, height: int) -> tuple[Crop, Crop]:
    """Two overlapping tiles along the frame's longer side (``tiles: true``): a 768x576 frame is two 461x576 tiles,
    each letterboxed into a 416 input at 0.72 of the frame's scale instead of 0.54."""
    if width >= height:
        w = round(width * TILE_SHARE)
        return (0, 0, w, height), (width - w, 0, w, height)
    h = round(height * TILE_SHARE)
    return (0, 0, width, h), (0, height - h, width, h)


def crop_for(motion: tuple[float, float, float, float], width: int, height: int, dst_w: int, dst_h: int,
             margin: float) -> Crop | None:
    """The crop to detect on for ``motion`` (normalised xyxy), or None for the whole frame."""
    x1, y1, x2, y2 = motion[0] * width, motion[1] * height, motion[2] * width, motion[3] * height
    w = (x2 - x1) * (1.0 + margin)
    h = (y2 - y1) * (1.0 + margin)
    w, h = max(w, float(dst_w)), max(h, float(dst_h))
    aspect = dst_w / dst_h
    if w / h < aspect:
        w = h * aspect
    else:
        h = w / aspect
    w, h = min(w, float(width)), min(h, float(height))  # a crop as tall as the frame: the letterbox pads it
    if w * h > WHOLE_FRAME_SHARE * width * height:
        return None
    cw, ch = round(w), round(h)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    x = min(max(0, round(cx - cw / 2)), width - cw)
    y = min(max(0, round(cy - ch / 2)), height - ch)
    return x, y, cw, ch
