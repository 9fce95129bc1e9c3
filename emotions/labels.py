"""The seven FER-2013 expression classes, their canonical order and their synonyms."""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)

# Moods the tracker reports besides the seven expressions.
MOOD_UNCERTAIN = "uncertain"
MOOD_NO_FACE = "no_face"
MOODS: tuple[str, ...] = (*EMOTIONS, MOOD_UNCERTAIN, MOOD_NO_FACE)

_SYNONYMS = {
    "anger": "angry",
    "angry": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "happy": "happy",
    "happiness": "happy",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "neutral": "neutral",
}


class UnknownLabelError(ValueError):
    pass


def canonical_label(name: str) -> str:
    """Return the canonical class name for ``name`` (e.g. 'Happiness' -> 'happy')."""
    try:
        return _SYNONYMS[name.strip().lower()]
    except KeyError:
        raise UnknownLabelError(
            f"unknown expression {name!r}; expected one of {', '.join(EMOTIONS)} or a synonym"
        ) from None


def label_index(name: str) -> int:
    """Return the position of ``name`` (or its synonym) in :data:`EMOTIONS`."""
    return EMOTIONS.index(canonical_label(name))
