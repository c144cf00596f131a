"""Reference detections, measured once and written down.

Measured on 2026-11-22 with OpenCV 4.14's own Darknet reader
(cv2.dnn.readNetFromDarknet, independent of edged's converter and engine) on the
original photos from the ultralytics 8.4.190 wheel: letterboxed to 416x416 with
grey 114 padding, class score = objectness x class probability, NMS at IoU 0.45.
Boxes are xyxy normalised to the photo; scores for information only.
"""

ZIDANE_PEOPLE = [
    # (box, score)
    ((0.5687, 0.0318, 0.9018, 1.0000), 0.926),  # Zidane, right
    ((0.2358, 0.2927, 0.6243, 1.0000), 0.654),  # Ancelotti, left
]

BUS_PEOPLE = [
    ((0.0556, 0.3710, 0.2578, 0.8224), 0.968),
    ((0.8466, 0.4338, 1.0000, 0.8263), 0.661),
]


def iou(a: tuple[float, ...] | list[float], b: tuple[float, ...] | list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
