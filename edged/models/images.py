"""Small image helpers shared by the camera's grey copy and the bench's replays."""

from __future__ import annotations

import cv2
import numpy as np


def shrink(image: np.ndarray, out: np.ndarray) -> None:
    """``image`` resized into ``out``: bilinear down to a quarter of the width (each output pixel averages the
    2x2 around its centre: 0.05 ms for 720p to 320x180 where an area average takes 0.24; the motion stage blurs
    it anyway), area averaging for larger reductions (a 4K frame would alias)."""
    fast = image.shape[1] <= 4 * out.shape[1]
    cv2.resize(image, (out.shape[1], out.shape[0]), dst=out,
               interpolation=cv2.INTER_LINEAR if fast else cv2.INTER_AREA)


# The channel mean and spread of ImageNet (RGB, 0..1), which DETR-family backbones are trained on.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
