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
# Links and handles say nothing about the language. ASCII-only on purpose: scripts without
# spaces (Chinese, Japanese) run straight into a link, and must not be stripped with it.
_URLISH = re.compile(r"[\w.:/@+\-?=&%#\[\]()]*(?:://|www\.|t\.me|@)[\w.:/@+\-?=&%#\[\]]*", re.ASCII)


@cache
def _identifier() -> LanguageIdentifier:
    # Imported here: numpy and the model are only needed by processes that process mail.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def preload() -> None:
    _identifier()


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text's language, or "" when it cannot be told reliably."""
    sample = _URLISH.sub(" ", text[:5000])
    if sum(ch.isalpha() for ch in sample) < MIN_LETTERS:
        return ""
    language, confidence = _identifier().classify(sample)
    return str(language) if confidence >= MIN_CONFIDENCE else ""
