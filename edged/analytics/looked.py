"""What a second look (``edged.looks``) made of one tracked object, as the track carries it: a sub-label once
attempts agree (or the candidates while they disagree), named colours, and the verifier's verdict. The looks
write it on the scheduler's thread before the frame's analytics step; events and snapshots read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PENDING, CONFIRMED, REJECTED, UNVERIFIED = "pending", "confirmed", "rejected", "unverified"


@dataclass
class Look:
    sub_label: str | None = None
    score: float = 0.0  # the sub-label's mean score over the attempts that agree
    attempts: int = 0  # classifier attempts that counted
    share: float = 0.0  # the share of them that agree
    disputed: tuple[str, ...] = ()  # enough attempts, no agreement: the leading candidates
    colors: tuple[str, ...] = ()
    verdict: str = ""  # '': not verified; pending, confirmed, rejected, unverified (no answer in time)
    since: float = 0.0  # when the verdict was asked for (monotonic)
    doubted: bool = False  # a look did not find it (another may): no longer published on the timeout
    changed: bool = False  # a published field changed since the last event about it
    released: bool = False  # the verdict came this frame: the object is announced now

    @property
    def hidden(self) -> bool:
        """Not published: its verdict is still pending, or the verifier rejected it."""
        return self.verdict in (PENDING, REJECTED)

    def fields(self) -> dict[str, Any]:
        """What events carry: ``sub_label`` and ``attributes``, only where known; ``verified`` where asked."""
        out: dict[str, Any] = {}
        if self.sub_label is not None:
            out["sub_label"] = {"label": self.sub_label, "score": round(self.score, 3), "attempts": self.attempts,
                                "agree": round(self.share, 2)}
        elif self.disputed:
            out["sub_label"] = {"label": None, "disputed": list(self.disputed), "attempts": self.attempts,
                                "agree": round(self.share, 2)}
        if self.colors:
            out["attributes"] = {"colors": list(self.colors)}
        if self.verdict in (CONFIRMED, UNVERIFIED):
            out["verified"] = self.verdict == CONFIRMED
        return out
