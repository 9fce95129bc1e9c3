"""The mood of one stream: smoothed, with hysteresis, so content does not flicker.

The raw per-frame label is not the mood. :class:`MoodTracker` keeps an
exponential moving average of the primary face's probabilities; a new mood
replaces the current one only after it has led it by ``margin`` for
``dwell_s`` seconds; below ``min_confidence`` the mood is ``uncertain``; after
``no_face_s`` without a face it is ``no_face``. While another reading is
waiting out that time (the held mood may have collapsed meanwhile), the state
names it as ``candidate``: the mood is changing, and a page should not show
the held mood's falling probability as if it were steady.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from emotions.labels import EMOTIONS, MOOD_NO_FACE, MOOD_UNCERTAIN, NUM_CLASSES


@dataclass(frozen=True, slots=True)
class MoodChanged:
    """The event a tracker emits when its mood switches."""

    mood: str
    previous: str
    confidence: float
    probabilities: dict[str, float]
    at: float


@dataclass(frozen=True, slots=True)
class MoodState:
    mood: str  # one of emotions.labels.MOODS
    confidence: float  # smoothed probability of the mood; 0 for no_face
    probabilities: dict[str, float]  # smoothed, empty for no_face
    changed: bool
    previous: str | None = None
    event: MoodChanged | None = None
    candidate: str | None = None  # the reading that leads and may replace the mood after its dwell

    def as_dict(self) -> dict:
        """Return the state as JSON-ready data."""
        return {
            "mood": self.mood,
            "confidence": round(self.confidence, 4),
            "probabilities": {label: round(p, 4) for label, p in self.probabilities.items()},
            "changed": self.changed,
            "previous": self.previous,
            "candidate": self.candidate,
        }


class MoodTracker:
    """Turn a stream of per-frame probabilities into a steady mood; one tracker per stream."""

    def __init__(
        self,
        alpha: float = 0.3,
        margin: float = 0.1,
        dwell_s: float = 1.0,
        min_confidence: float = 0.4,
        no_face_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        self.alpha = alpha
        self.margin = margin
        self.dwell_s = dwell_s
        self.min_confidence = min_confidence
        self.no_face_s = no_face_s
        self.clock = clock
        self.mood = MOOD_NO_FACE
        self.smoothed: np.ndarray | None = None
        self._last_face_at: float | None = None
        self._candidate: str | None = None
        self._candidate_since = 0.0

    def update(self, probabilities: Sequence[float] | np.ndarray | None) -> MoodState:
        """Fold in one frame: (7,) probabilities of the primary face, or None when no face was found."""
        now = self.clock()
        if probabilities is None:
            return self._absent(now)

        p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
        if p.shape != (NUM_CLASSES,):
            raise ValueError(f"expected {NUM_CLASSES} probabilities, got {p.shape}")
        self._last_face_at = now
        if self.smoothed is None:
            self.smoothed = p
        else:
            self.smoothed = self.alpha * p + (1 - self.alpha) * self.smoothed

        wanted = self._wanted()
        if self.mood == MOOD_NO_FACE:
            # A face is in view, so "no face" is simply false: no dwell before leaving it.
            return self._switch(wanted, now)
        if wanted == self.mood:
            self._candidate = None
            return self._state(changed=False)
        if wanted != self._candidate:
            self._candidate, self._candidate_since = wanted, now
        if now - self._candidate_since >= self.dwell_s:
            return self._switch(wanted, now)
        return self._state(changed=False)

    def _wanted(self) -> str:
        assert self.smoothed is not None
        top = int(np.argmax(self.smoothed))
        if self.smoothed[top] < self.min_confidence:
            return MOOD_UNCERTAIN
        label = EMOTIONS[top]
        if self.mood in EMOTIONS and label != self.mood:
            lead = self.smoothed[top] - self.smoothed[EMOTIONS.index(self.mood)]
            if lead < self.margin:
                return self.mood
        return label

    def _absent(self, now: float) -> MoodState:
        if self.mood == MOOD_NO_FACE:
            return self._state(changed=False)
        if self._last_face_at is not None and now - self._last_face_at < self.no_face_s:
            return self._state(changed=False, candidate=MOOD_NO_FACE)
        state = self._switch(MOOD_NO_FACE, now)
        self.smoothed = None
        return state

    def _switch(self, mood: str, now: float) -> MoodState:
        previous, self.mood, self._candidate = self.mood, mood, None
        if mood == previous:
            return self._state(changed=False)
        state = self._state(changed=True, previous=previous)
        event = MoodChanged(mood, previous, state.confidence, state.probabilities, now)
        return MoodState(state.mood, state.confidence, state.probabilities, True, previous, event)

    def _state(
        self, *, changed: bool, previous: str | None = None, candidate: str | None = None
    ) -> MoodState:
        candidate = candidate or self._candidate
        if self.mood == MOOD_NO_FACE or self.smoothed is None:
            return MoodState(self.mood, 0.0, {}, changed, previous, candidate=candidate)
        probabilities = {label: float(p) for label, p in zip(EMOTIONS, self.smoothed, strict=True)}
        if self.mood == MOOD_UNCERTAIN:
            confidence = float(self.smoothed.max())
        else:
            confidence = probabilities[self.mood]
        return MoodState(self.mood, confidence, probabilities, changed, previous, candidate=candidate)
