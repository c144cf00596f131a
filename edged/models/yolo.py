"""Where a frame goes in the network input (letterbox or stretch, and back), and what a frame's detections are.

The decoders, one per output layout, are in ``models/heads``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edged.errors import ModelError
from edged.models.planes import I420Crop

PAD_VALUE = 114
RESIZES = ("letterbox", "stretch", "corner")  # how a frame is fitted to the input: Letterbox.fit


@dataclass(frozen=True)
class Letterbox:
    """How a source frame maps into the network input: scale, then centre with padding."""

    src_w: int
    src_h: int
    dst_w: int
    dst_h: int
    scale: float
    new_w: int
    new_h: int
    dx: int
    dy: int
    # A crop of a larger frame (motion regions): where the crop's top left is in it, and its size.
    ox: int = 0
    oy: int = 0
    full_w: int = 0  # 0: the source is the whole frame
    full_h: int = 0
    scale_y: float = 0.0  # a stretched input (DETR exports): the vertical scale; 0: the same as ``scale``

    @property
    def sy(self) -> float:
        return self.scale_y or self.scale

    @classmethod
    def fit(cls, src_w: int, src_h: int, dst_w: int, dst_h: int,
            crop: tuple[int, int, int, int] | None = None, resize: str = "letterbox") -> Letterbox:
        """``crop``: (x, y, full width, full height) when the source is a crop of a larger frame. ``resize``: one
        of RESIZES: ``letterbox`` (aspect kept, centred, borders around), ``stretch`` (the whole input, aspect not
        kept: how RT-DETR's reference exporter feeds it, no borders), ``corner`` (aspect kept, the picture in the
        top-left corner, borders right and below: YOLOX's)."""
        where = crop or (0, 0, 0, 0)
        if resize == "stretch":
            return cls(src_w, src_h, dst_w, dst_h, dst_w / src_w, dst_w, dst_h, 0, 0, *where, scale_y=dst_h / src_h)
        scale = min(dst_w / src_w, dst_h / src_h)
        new_w = max(1, min(dst_w, round(src_w * scale)))
        new_h = max(1, min(dst_h, round(src_h * scale)))
        dx, dy = (0, 0) if resize == "corner" else ((dst_w - new_w) // 2, (dst_h - new_h) // 2)
        return cls(src_w, src_h, dst_w, dst_h, scale, new_w, new_h, dx, dy, *where)

    def to_frame(self, xyxy: np.ndarray) -> None:
        """Boxes in input pixels (xyxy, float32, in place) -> normalised 0..1 xyxy of the source frame, through the
        letterbox or stretch and, for a crop, back into the whole frame."""
        sx, sy = self.scale, self.sy
        xs, ys = xyxy[:, 0::2], xyxy[:, 1::2]  # views: x1, x2 and y1, y2
        xs -= self.dx
        ys -= self.dy
        if self.full_w:
            xs /= sx
            ys /= sy
            np.minimum(np.maximum(xs, 0.0, out=xs), self.src_w, out=xs)  # ufuncs: ndarray.clip's wrapper costs more
            np.minimum(np.maximum(ys, 0.0, out=ys), self.src_h, out=ys)
            xs += self.ox
            ys += self.oy
            xs /= self.full_w
            ys /= self.full_h
        else:
            xs /= sx * self.src_w
            ys /= sy * self.src_h
            np.minimum(np.maximum(xs, 0.0, out=xs), 1.0, out=xs)
            np.minimum(np.maximum(ys, 0.0, out=ys), 1.0, out=ys)

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """Normalised xyxy boxes of the source frame -> xyxy in input pixels (a new float32 array): ``to_frame``'s
        inverse, for reading the input's pixels under a detection."""
        out = np.empty(boxes.shape, np.float32)
        full_w, full_h = self.full_w or self.src_w, self.full_h or self.src_h
        out[:, [0, 2]] = (boxes[:, [0, 2]] * full_w - self.ox) * self.scale + self.dx
        out[:, [1, 3]] = (boxes[:, [1, 3]] * full_h - self.oy) * self.sy + self.dy
        return out

    def same_borders(self, other: Letterbox | None) -> bool:
        """``other`` left the same borders in a buffer (the same placement of the picture)."""
        return other is not None and (other.dst_w, other.dst_h, other.new_w, other.new_h, other.dx, other.dy) == (
            self.dst_w, self.dst_h, self.new_w, self.new_h, self.dx, self.dy)

    def apply(self, image: np.ndarray | I420Crop, dst: np.ndarray, borders: bool = True) -> None:
        """Resize ``image`` (BGR, or a frame's 4:2:0 planes) into ``dst`` (an ``[H, W, 3]`` view) and paint the
        borders.

        Writes only into ``dst``; allocates nothing frame-sized. ``borders=False``: the
        caller knows ``dst`` already has this letterbox's borders (same geometry last time).
        """
        dx, dy, nw, nh = self.dx, self.dy, self.new_w, self.new_h
        if borders and nh < self.dst_h:
            dst[:dy] = PAD_VALUE
            dst[dy + nh:] = PAD_VALUE
        if borders and nw < self.dst_w:
            dst[dy:dy + nh, :dx] = PAD_VALUE
            dst[dy:dy + nh, dx + nw:] = PAD_VALUE
        inner = dst[dy:dy + nh, dx:dx + nw]
        if isinstance(image, I420Crop):
            image.into(inner)
        elif (nw, nh) == (self.src_w, self.src_h):
            np.copyto(inner, image)
        else:
            cv2.resize(image, (nw, nh), dst=inner, interpolation=cv2.INTER_LINEAR)


@dataclass
class Detections:
    """Detections for one frame: boxes normalised xyxy, scores, class ids.

    ``finite`` is False when the engine's output held NaN or inf (an f16 engine on a
    device it does not fit, for one): then there are no detections to trust, which is
    not the same as "nothing there".
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    finite: bool = True
    colours: np.ndarray | None = None  # [N, 6] the tracker's appearance cue (analytics.appearance), where read

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def take(self, index: np.ndarray) -> Detections:
        """The detections at ``index`` (indices or a mask), with their colours."""
        return Detections(self.boxes[index], self.scores[index], self.classes[index], self.finite,
                          None if self.colours is None else self.colours[index])


def class_mask(labels: list[str], wanted: list[str] | None) -> np.ndarray | None:
    """A 0/1 vector over the model's classes, or None for 'all labels'."""
    if not wanted:
        return None
    index = {name: i for i, name in enumerate(labels)}
    mask = np.zeros(len(labels), dtype=np.float32)
    for name in wanted:
        if name not in index:
            raise ModelError(f"label '{name}' is not one of the model's {len(labels)} labels")
        mask[index[name]] = 1.0
    return mask
