"""One camera's second looks: which of its objects are due for which look on this frame, and what the answers make
of them (on the scheduler's thread, no I/O).

- ``verify``: when an object of a verified label is confirmed (the analytics hold it back meanwhile), and again
  ``every_s`` later on a newer frame while it is not confirmed, up to ``attempts``: one blurred or hidden frame does
  not reject a real object;
- ``classify``: at most every ``every_s`` per object, while its box is at least ``min_size`` pixels on its shorter
  side, up to ``max_attempts``; the votes (``Votes``) make the sub-label;
- ``colors``: alike, the names voted by ``ColourVotes``.

An object is looked at only on a frame where the detector saw it (its box is this frame's), from the picture of that
frame. An object that has gone is forgotten on the next frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edged.analytics.looked import CONFIRMED, PENDING, REJECTED, Look
from edged.analytics.tracker import Track
from edged.config.looks import ClassifyConfig, ColorsConfig, VerifyConfig
from edged.config.models import CameraConfig
from edged.looks.station import Answer
from edged.looks.votes import ColourVotes, Votes


@dataclass
class Followed:
    votes: Votes | None = None
    colours: ColourVotes | None = None
    next_classify: float = 0.0
    next_colours: float = 0.0
    verify_tries: int = 0
    verify_waiting: bool = False  # asked, no answer yet
    next_verify: float = 0.0


@dataclass
class Due:
    track: Track
    kind: str  # verify, classify, colors
    settings: VerifyConfig | ClassifyConfig | ColorsConfig


class CameraLooks:
    def __init__(self, name: str, config: CameraConfig, labels: Sequence[str]) -> None:
        self.name = name
        index = {label: i for i, label in enumerate(labels)}
        self.classify: dict[int, ClassifyConfig] = {}
        for look in config.classify:
            for label in look.labels or labels:
                if label in index:
                    self.classify[index[label]] = look
        self.verify = {index[label]: v for label, v in config.verify.items() if label in index}
        self.colors = config.colors
        self.colour_classes = {index[label] for label in config.colors.labels if label in index} \
            if config.colors is not None else set()
        self.classes = set(self.classify) | set(self.verify) | self.colour_classes
        self.followed: dict[int, Followed] = {}
        self.verified = self.rejected = self.late = self.sub_labels = 0
        self.answers: list[tuple[int, bool, float]] | None = None  # the bench's record: (track, confirmed, score)

    def classifier_of(self, cls: int) -> str:
        return self.classify[cls].classifier

    def apply(self, answers: Sequence[Answer], now: float) -> None:
        for answer in answers:
            track = answer.ask.track
            followed = self.followed.get(track.id)
            if followed is None:
                continue  # gone meanwhile
            look = track.look = track.look or Look()
            if answer.ask.kind == "verify":
                followed.verify_waiting = False
                if self.answers is not None:
                    self.answers.append((track.id, answer.confirmed, answer.score))
                if look.verdict != PENDING:
                    self.late += 1
                    continue
                settings = self.verify[track.cls]
                if not answer.confirmed and followed.verify_tries < settings.attempts:
                    followed.next_verify = now + settings.every_s
                    look.doubted = True
                    continue  # another look at a later frame where it is seen; gone before that: never published
                look.verdict = CONFIRMED if answer.confirmed else REJECTED
                look.released = answer.confirmed
                self.verified += answer.confirmed
                self.rejected += not answer.confirmed
            elif answer.ask.kind == "colors" and followed.colours is not None:
                followed.colours.add(answer.names, look)
            elif answer.ask.kind == "classify" and followed.votes is not None:
                had = look.sub_label
                followed.votes.add(answer.name, answer.score, look)
                self.sub_labels += had is None and look.sub_label is not None

    def due(self, tracks: Sequence[Track], frame_ts: float, width: int, height: int, now: float) -> list[Due]:
        """What to look at on this frame (``width`` x ``height``: the frame's size, for ``min_size``)."""
        out: list[Due] = []
        for track in tracks:
            cls = track.cls
            if cls not in self.classes or track.last_ts != frame_ts or not track.confirmed:
                continue
            followed = self.followed.get(track.id)
            if followed is None:
                followed = self.followed[track.id] = Followed()
            look = track.look
            if cls in self.verify:
                if look is not None and look.verdict == PENDING and not followed.verify_waiting \
                        and now >= followed.next_verify:
                    followed.verify_waiting = True
                    followed.verify_tries += 1
                    out.append(Due(track, "verify", self.verify[cls]))
                if look is None or look.hidden:
                    continue  # classify and colours once it is published
            side = min((track.box[2] - track.box[0]) * width, (track.box[3] - track.box[1]) * height)
            classify = self.classify.get(cls)
            if classify is not None and now >= followed.next_classify and side >= classify.min_size:
                votes = followed.votes = followed.votes or Votes(classify.attempts, classify.agree,
                                                                 classify.min_score)
                if votes.tried < classify.max_attempts:
                    followed.next_classify = now + classify.every_s
                    out.append(Due(track, "classify", classify))
            colors = self.colors
            if colors is not None and cls in self.colour_classes and now >= followed.next_colours \
                    and side >= colors.min_size:
                voted = followed.colours = followed.colours or ColourVotes(colors.attempts)
                if voted.tried < colors.max_attempts:
                    followed.next_colours = now + colors.every_s
                    out.append(Due(track, "colors", colors))
        if len(self.followed) > len(tracks):
            alive = {track.id for track in tracks}
            for gone in [key for key in self.followed if key not in alive]:
                del self.followed[gone]
        return out

    def not_taken(self, due: Due) -> None:
        """The crop could not be taken (the tray was full, the box off the picture): ask again on a later frame."""
        followed = self.followed.get(due.track.id)
        if followed is None:
            return
        if due.kind == "verify":
            followed.verify_waiting = False
            followed.verify_tries -= 1
        elif due.kind == "classify":
            followed.next_classify = 0.0
        else:
            followed.next_colours = 0.0

    def forget(self) -> None:
        self.followed.clear()
