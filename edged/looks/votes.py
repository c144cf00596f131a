"""Agreement before a sub-label is published (Frigate's rule for its object classifiers): an attempt counts when its
best class scores at least ``min_score``; once ``attempts`` have counted, the label at least ``agree`` of them name
is the sub-label, with the mean score of those that named it. While the attempts disagree, the leading candidates
are published as such (a disagreement that persists is shown, not hidden). Colours are voted alike, without a
score: each name that most attempts saw is kept."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from edged.analytics.looked import Look

LEADING = 3  # candidates shown while attempts disagree


@dataclass
class Votes:
    attempts: int
    agree: float
    min_score: float
    names: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    tried: int = 0  # every attempt, counted or not (for max_attempts)

    def add(self, name: str, score: float, look: Look) -> None:
        """One attempt's best class; updates ``look`` (and marks it changed) when what it says changes."""
        self.tried += 1
        if score < self.min_score:
            return
        self.names.append(name)
        self.scores.append(score)
        if len(self.names) < self.attempts:
            return
        ranked = Counter(self.names).most_common()
        leader, count = ranked[0]
        share = count / len(self.names)
        before = (look.sub_label, look.disputed)
        if share >= self.agree:
            look.sub_label = leader
            look.score = sum(s for n, s in zip(self.names, self.scores) if n == leader) / count
            look.disputed = ()
        else:
            look.sub_label = None
            look.disputed = tuple(name for name, _ in ranked[:LEADING])
        look.attempts, look.share = len(self.names), share
        look.changed = look.changed or (look.sub_label, look.disputed) != before


@dataclass
class ColourVotes:
    attempts: int
    seen: Counter[str] = field(default_factory=Counter)
    tried: int = 0

    def add(self, names: tuple[str, ...], look: Look) -> None:
        """One attempt's colour names (most of the crop first); once ``attempts`` are in, the names more than half
        of them saw, most often seen first (at most two; the first alone where none has a majority)."""
        self.tried += 1
        if not names:
            return
        self.seen.update(names[:2])
        if self.tried < self.attempts:
            return
        ranked = self.seen.most_common()
        kept = tuple(name for name, count in ranked[:2] if count * 2 > self.tried) or (ranked[0][0],)
        if kept != look.colors:
            look.colors = kept
            look.changed = True
