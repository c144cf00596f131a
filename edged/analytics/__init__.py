"""Per-camera analytics: what edged makes of one camera's frames and detections, with no threads of its own.

- ``motion`` and ``gate``: whether a frame goes to the detector (motion, a refresh, an object to confirm);
- ``tamper``: a camera covered, defocused or moved;
- ``regions``: where to crop around motion so small objects are found;
- ``tracker``: identities across frames (``appearance``: the colours it tells objects apart by); ``zones`` and
  ``lines``: zones (with time in them and speed), counting lines with hysteresis, object masks; ``stays``: each
  zone's last stays; ``events``: object events;
- ``tallies``: crossing totals and count topics that outlive a restart;
- ``camera``: ``CameraAnalytics``, the per-frame chain as one object (``step(...) -> FrameOutcome``), which the
  result stage and the bench both call.

Nothing here makes a payload or knows MQTT: sinks (``edged.pipeline.sinks``) do.
"""

from edged.analytics.appearance import colours, similarity
from edged.analytics.camera import CONFIRM_S, CameraAnalytics, Counted, FrameOutcome, Retained
from edged.analytics.gate import CameraGate
from edged.analytics.motion import grey_shape
from edged.analytics.regions import crop_for, detect_region, regions_apply, tiles
from edged.analytics.tallies import Tallies
from edged.analytics.tamper import Transition
from edged.analytics.tracker import Track, Tracker, TrackUpdate, decode_floor

__all__ = ["CONFIRM_S", "CameraAnalytics", "CameraGate", "Counted", "FrameOutcome", "Retained", "Tallies", "Track",
           "TrackUpdate", "Tracker", "Transition", "colours", "crop_for", "decode_floor", "detect_region",
           "grey_shape", "regions_apply", "similarity", "tiles"]
