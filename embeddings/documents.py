"""A document stored as pieces that each carry their own metadata (say the timed moments of a
video): embedded and charged in one call, under a document id the caller chooses, so the caller
can replace or delete the whole document later with `document_delete`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from accounts.models import User
from embeddings.chunking import Chunk, text_chunk, text_token_count
from embeddings.services import CreatedEmbeddings, _embed, _store, document_delete, embedding_model_get


@dataclass(frozen=True)
class Piece:
    text: str
    metadata: dict[str, Any]


def embedding_document_replace(
    *, user: User, document_id: uuid.UUID, pieces: Sequence[Piece], model: str | None = None
) -> CreatedEmbeddings | None:
    """Replace the user's document `document_id` with `pieces` (one or more chunks each: a piece
    longer than the model reads is split, every part keeping the piece's metadata). Charged like
    any embedding, by the tokens embedded; no pieces just deletes the document."""
    document_delete(user=user, document_id=document_id)
    pieces = [piece for piece in pieces if piece.text.strip()]
    if not pieces:
        return None
    embedding_model = embedding_model_get(model=model)
    chunks: list[Chunk] = []
    metadatas: list[dict[str, Any]] = []
    for piece in pieces:
        tokens = text_token_count(text=piece.text, count_tokens=embedding_model.count_tokens)
        if tokens <= embedding_model.max_input_tokens:
            parts = [Chunk(index=0, text=piece.text, start=0, end=len(piece.text), tokens=tokens)]
        else:
            parts = text_chunk(
                text=piece.text,
                count_tokens=embedding_model.count_tokens,
                chunk_size=min(
                    settings.EMBEDDINGS_CHUNK_SIZE_DEFAULT,
                    embedding_model.max_input_tokens - embedding_model.token_overhead,
                ),
                chunk_overlap=0,
            )
        for part in parts:
            chunks.append(Chunk(index=len(chunks), text=part.text, start=part.start, end=part.end, tokens=part.tokens))
            metadatas.append(piece.metadata)
    result, units = _embed(user=user, model=embedding_model, texts=[chunk.text for chunk in chunks])
    ids = _store(user=user, chunks=chunks, result=result, document_id=document_id, metadata=metadatas)
    return CreatedEmbeddings(
        ids=ids,
        document_id=document_id,
        chunks=len(chunks),
        tokens=result.tokens or sum(chunk.tokens for chunk in chunks),
        dimensions=result.dimensions,
        model=result.model,
        units_charged=units,
    )
