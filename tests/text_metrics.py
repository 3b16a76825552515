"""Error rates for judging speech-to-text and OCR output: engines may differ by a word between
machines, thread counts and library builds, so tests compare rates against thresholds, never words."""

from __future__ import annotations

import re
from collections.abc import Sequence


def normalize_words(text: str) -> list[str]:
    """Lower-case words without punctuation, for word error rate."""
    text = text.lower().replace("-", " ")
    return re.sub(r"[^a-z0-9' ]+", " ", text).split()


def _edits(ref: Sequence[str], hyp: Sequence[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        diagonal, row[0] = row[0], i
        for j in range(1, len(hyp) + 1):
            current = min(row[j] + 1, row[j - 1] + 1, diagonal + (ref[i - 1] != hyp[j - 1]))
            diagonal, row[j] = row[j], current
    return row[len(hyp)]


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER: total word edit distance (substitutions + insertions + deletions) / reference words."""
    edits = total = 0
    for ref_text, hyp_text in zip(references, hypotheses, strict=True):
        ref = normalize_words(ref_text)
        edits += _edits(ref, normalize_words(hyp_text))
        total += len(ref)
    return edits / max(total, 1)


def wer(reference: str, hypothesis: str) -> float:
    return word_error_rate([reference], [hypothesis])


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Character edit distance / reference length, case and surrounding space ignored (for single words)."""
    ref, hyp = reference.strip().lower(), hypothesis.strip().lower()
    return _edits(ref, hyp) / max(len(ref), 1)
