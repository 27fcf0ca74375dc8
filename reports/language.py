"""Language detection for report text, with py3langid's bundled model (nothing downloaded)."""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier

# Text shorter than this (in letters) is guessed wrong too often to be worth a label.
MIN_LETTERS = 12
MIN_CONFIDENCE = 0.5
# Links and handles say nothing about the language: a run of URL characters holding one of these
# markers is left out. ASCII-only on purpose: scripts without spaces (Chinese, Japanese) run
# straight into a link, and must not be stripped with it. Runs first, markers inside them second:
# one pattern with the marker between two starred classes backtracked over every run, 0.45 s
# for 5,000 "(" (SECURITY E9).
_URL_CHARS = re.compile(r"[\w.:/@+\-?=&%#\[\]()]+", re.ASCII)
_URL_MARKER = re.compile(r"://|www\.|t\.me|@")


@cache
def _identifier() -> LanguageIdentifier:
    # Imported here: numpy and the model are only needed by processes that process mail.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def preload() -> None:
    _identifier()


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text's language, or "" when it cannot be told reliably."""
    sample = _URL_CHARS.sub(lambda run: " " if _URL_MARKER.search(run.group()) else run.group(), text[:5000])
    if sum(ch.isalpha() for ch in sample) < MIN_LETTERS:
        return ""
    language, confidence = _identifier().classify(sample)
    return str(language) if confidence >= MIN_CONFIDENCE else ""
