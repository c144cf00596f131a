"""A cheap appearance cue for the tracker: an object's colour histogram, read from the picture the detector saw
(the engine's input buffer, before it is reused), no weights.

Each box's pixels are counted in ``BINS`` levels a channel (8 x 8 x 8 BGR colours) and the counts normalised and
square-rooted, so that the dot product of two signatures is their Bhattacharyya coefficient: 1 for the same colours
in the same shares, 0 for no colour in common. One ``cv2.calcHist`` a box (5-20 µs at 416).

Why a histogram of the whole box and not the mean colour of its upper and lower middle (what this was): on the plaza
footage of ``edged bench``'s counting rows, 150 pairs of boxes judged by eye (where a track was last seen, and the
box it was taken up by after a gap, or a new track started; ``studies/annotations/plaza-identity.json``,
``edged.bench.identity``) are told apart, same person or someone else, with an area under the ROC curve of 0.92 by
this signature and 0.73 by the two mean colours (0.91 and 0.69 on the first 126): most people there wear dark
coats, and a navy jacket with red shoulders, a black coat under blonde hair and a black coat under dark hair have
nearly the same means and different histograms. On the first 100 of those
pairs (read from a resized frame) the box's middle column alone scored 0.88, four parts of it 0.89 and the whole box
0.94: the background inside a box is part of what tells two people who walk side by side apart.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

BINS = 8  # levels per channel
SIZE = BINS**3
_CHANNELS, _SIZES, _RANGES = [0, 1, 2], [BINS] * 3, [0, 256] * 3


def colours(image: np.ndarray, boxes: np.ndarray, wanted: np.ndarray | None = None) -> np.ndarray:
    """``image``: the detector's input (uint8 HWC BGR); ``boxes``: xyxy in its pixels; ``wanted``: which boxes to
    read (None: all). Returns float32 [N, SIZE]: each box's square-rooted colour shares; a row of zeros for a box not
    read (or with no pixels in the image), which the tracker takes for colours not known."""
    out = np.zeros((len(boxes), SIZE), np.float32)
    height, width = image.shape[:2]
    rows = range(len(boxes)) if wanted is None else np.flatnonzero(wanted).tolist()
    for row, (x1, y1, x2, y2) in zip(rows, boxes[rows].tolist(), strict=True):
        left, right = max(0, int(x1)), min(width, math.ceil(x2))
        top, bottom = max(0, int(y1)), min(height, math.ceil(y2))
        if right > left and bottom > top:
            out[row] = cv2.calcHist([image[top:bottom, left:right]], _CHANNELS, None, _SIZES, _RANGES).reshape(-1)
    out /= np.maximum(out.sum(axis=1, keepdims=True), 1.0)
    np.sqrt(out, out=out)
    return out


def similarity(tracks: np.ndarray, dets: np.ndarray) -> np.ndarray:
    """[T, D] in 0..1: the Bhattacharyya coefficient of each pair of signatures (1: the same colours)."""
    return np.asarray(np.clip(tracks @ dets.T, 0.0, 1.0))
