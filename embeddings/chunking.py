"""Splitting text into chunks that an embedding model takes whole.

A text is cut into *units* at sentence ends, line breaks and paragraph breaks; a unit longer
than a chunk is cut further at word boundaries (and a single "word" longer than a chunk, such as
a pasted hash or URL, at character boundaries). Units are then packed greedily into chunks of at
most `chunk_size` tokens, and each chunk after the first starts with the trailing units of the
previous one, up to `chunk_overlap` tokens, so a sentence near a cut is seen with its context.

Token counts come from the embedding model's own tokenizer through a `count_tokens` callable
(`list[str] -> list[int]`). Tokenizers add special tokens to every text ([CLS]/[SEP] for BERT
models, none for OpenAI's); that overhead is measured once on the empty string and subtracted, so
`chunk_size` counts the text's own tokens. Counts of whitespace-separated pieces add up, which is
what lets units be counted once and packed without recounting every candidate chunk.

Chunk texts are slices of the original text, so formatting (line breaks, spacing) is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

TokenCounter = Callable[[Sequence[str]], list[int]]

# A sentence ends at terminal punctuation (with any closing quotes or brackets) followed by
# whitespace; every line break is a boundary as well, which covers paragraphs and list items.
_BOUNDARY = re.compile(r"""[.!?\u2026\u3002\uff01\uff1f]+["'\u201d\u2019)\]]*(?=\s)|\n""")
_WORD = re.compile(r"\S+")
# Sentences at least this long are recounted word by word: well below any tokenizer's cap (MiniLM
# truncates at 256), so a capped count can never be taken for the real one.
_RECOUNT_FROM = 64


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    start: int  # character offsets of the chunk in the original text
    end: int
    tokens: int  # as the model's tokenizer counts the chunk, special tokens included


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int  # the text's own tokens, without the tokenizer's special tokens


def _trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        span = _trimmed(text, start, match.end())
        if span:
            spans.append(span)
        start = match.end()
    span = _trimmed(text, start, len(text))
    if span:
        spans.append(span)
    return spans


class _Counter:
    """The tokenizer's counts with its fixed per-text overhead taken off."""

    def __init__(self, count_tokens: TokenCounter) -> None:
        self._count = count_tokens
        self.overhead = count_tokens([""])[0]

    def own(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [max(n - self.overhead, 0) for n in self._count(list(texts))]

    def total(self, texts: Sequence[str]) -> list[int]:
        return self._count(list(texts)) if texts else []


def _split_long(text: str, start: int, end: int, budget: int, counter: _Counter) -> list[_Unit]:
    """Cut the span [start, end) into word units, and words longer than `budget` into pieces."""
    # `finditer(text, pos, endpos)` reports offsets in `text`, not in the span.
    words = [(m.start(), m.end()) for m in _WORD.finditer(text, start, end)]
    counts = counter.own([text[s:e] for s, e in words])
    units: list[_Unit] = []
    for (s, e), n in zip(words, counts, strict=True):
        if n <= budget:
            units.append(_Unit(s, e, n))
        else:
            units.extend(_split_chars(text, s, e, budget, counter))
    return units


def _split_chars(text: str, start: int, end: int, budget: int, counter: _Counter) -> list[_Unit]:
    """Halve a token-dense run of characters until every piece fits the budget."""
    pending = [(start, end)]
    out: list[_Unit] = []
    while pending:
        s, e = pending.pop()
        n = counter.own([text[s:e]])[0]
        if n <= budget or e - s <= 1:
            out.append(_Unit(s, e, n))
        else:
            mid = (s + e) // 2
            pending.extend([(mid, e), (s, mid)])  # popped left half first: keeps text order
    return out


def _units(text: str, budget: int, counter: _Counter) -> list[_Unit]:
    spans = _sentence_spans(text)
    counts = counter.own([text[s:e] for s, e in spans])
    units: list[_Unit] = []
    for (s, e), n in zip(spans, counts, strict=True):
        if n <= budget:
            units.append(_Unit(s, e, n))
        else:
            units.extend(_split_long(text, s, e, budget, counter))
    return units


def text_token_count(*, text: str, count_tokens: TokenCounter) -> int:
    """Tokens of `text` as one input, without the cap some tokenizers apply (MiniLM truncates at
    256): the text's sentences are counted one by one and the per-text overhead added once."""
    counter = _Counter(count_tokens)
    spans = _sentence_spans(text)
    total = 0
    for (s, e), n in zip(spans, counter.own([text[s:e] for s, e in spans]), strict=True):
        if n >= _RECOUNT_FROM:
            n = sum(unit.tokens for unit in _split_long(text, s, e, _RECOUNT_FROM, counter))
        total += n
    return total + counter.overhead


def text_chunk(
    *,
    text: str,
    count_tokens: TokenCounter,
    chunk_size: int,
    chunk_overlap: int,
) -> list[Chunk]:
    """Split `text` into chunks of at most `chunk_size` tokens (the text's own tokens) that
    overlap by up to `chunk_overlap` tokens, cutting only at sentence, line or word boundaries
    unless a single word is longer than a chunk."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")
    if not 0 <= chunk_overlap < chunk_size:
        raise ValueError("chunk_overlap must be at least 0 and smaller than chunk_size")
    counter = _Counter(count_tokens)
    units = _units(text, chunk_size, counter)
    spans: list[tuple[int, int]] = []
    i, n = 0, len(units)
    while i < n:
        j, total = i, 0
        while j < n and total + units[j].tokens <= chunk_size:
            total += units[j].tokens
            j += 1
        j = max(j, i + 1)  # every unit fits the budget; this only guards the loop
        spans.append((units[i].start, units[j - 1].end))
        if j >= n:
            break
        # Carry trailing units into the next chunk, but never so many that the next unit no
        # longer fits beside them (that would emit a chunk holding nothing new).
        room = min(chunk_overlap, chunk_size - units[j].tokens)
        k, carried = j, 0
        while k - 1 > i and carried + units[k - 1].tokens <= room:
            k -= 1
            carried += units[k].tokens
        i = k
    texts = [text[s:e] for s, e in spans]
    totals = counter.total(texts)
    return [
        Chunk(index=index, text=chunk_text, start=s, end=e, tokens=tokens)
        for index, ((s, e), chunk_text, tokens) in enumerate(zip(spans, texts, totals, strict=True))
    ]
