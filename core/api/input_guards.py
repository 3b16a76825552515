"""What a request body may hold, checked once where every body is parsed.

Two kinds of input parse fine and then crash deeper in the stack:

- JSON nested hundreds of levels deep: every recursive walk after the parser (camelCase
  conversion, serializers, `json.dumps` of metadata) ends in a RecursionError;
- text PostgreSQL cannot store: a NUL character (refused in `text` and `jsonb` alike) and lone
  UTF-16 surrogates such as the JSON escape `"\\ud800"` (which cannot be encoded as UTF-8).

Refusing them here, before any view sees the data, covers every endpoint that stores user text or
JSON (names, chat messages, titles, embedding metadata, search filters, form fields, file names),
including ones added later. The walk is iterative, so it cannot itself overflow the stack.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from rest_framework.exceptions import ParseError, ValidationError

# Far deeper than any request of this API needs (embedding metadata is the deepest, 8 KB at most).
MAX_JSON_DEPTH = 32
UNSTORABLE_MESSAGE = "Text may not contain NUL characters or unpaired surrogates."
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def has_unstorable_text(text: str) -> bool:
    return _UNSTORABLE.search(text) is not None


def _printable(key: Any) -> str:
    """A key fit to name in an error body (which must itself be encodable)."""
    return _UNSTORABLE.sub("\ufffd", str(key))


def _join(path: str, key: Any) -> str:
    return f"{path}.{_printable(key)}" if path else _printable(key)


def too_deep() -> ParseError:
    return ParseError(f"Malformed JSON: the body is nested too deeply (at most {MAX_JSON_DEPTH} levels).")


def check_json(data: Any) -> None:
    """Raise ParseError for nesting deeper than MAX_JSON_DEPTH, or ValidationError naming the
    field (as a dotted path of the keys sent) whose text PostgreSQL cannot store."""
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, str):
            if has_unstorable_text(value):
                raise ValidationError({path or "body": [UNSTORABLE_MESSAGE]})
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise too_deep()
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and has_unstorable_text(key):
                    raise ValidationError({_join(path, key): [UNSTORABLE_MESSAGE]})
                stack.append((item, depth + 1, _join(path, key)))
        else:
            stack.extend((item, depth + 1, _join(path, index)) for index, item in enumerate(value))


def check_form(items: Iterable[tuple[str, list[Any]]]) -> None:
    """The same text check for form and multipart fields (`QueryDict.lists()`), including the
    names of uploaded files, which end up in job records."""
    for key, values in items:
        if has_unstorable_text(key):
            raise ValidationError({_printable(key): [UNSTORABLE_MESSAGE]})
        for value in values:
            text = value if isinstance(value, str) else getattr(value, "name", None)
            if isinstance(text, str) and has_unstorable_text(text):
                raise ValidationError({key: [UNSTORABLE_MESSAGE]})
