"""Embeddings as a billed AI job (the embeddings app's chunking and search call this)."""

from __future__ import annotations

from collections.abc import Sequence

from accounts.models import User
from ai_services import tokens as token_counter
from ai_services.models import AIJob
from ai_services.providers import EmbedResult
from ai_services.providers.capabilities import embedder
from ai_services.query_embeddings import query_embedding_get, query_embedding_put
from ai_services.services.jobs import ai_job_begin, ai_job_failures_recorded, ai_job_succeed
from quotas.modalities import EMBED


def embedding_run(
    *, user: User, texts: Sequence[str], model: str | None = None, reuse_query: bool = False
) -> tuple[EmbedResult, AIJob]:
    """Embed `texts` for `user`: quota by started 1,000 tokens, recorded as an embedding job.

    The reservation uses an offline count (cl100k, exact for OpenAI's embedding models) and is
    settled to the tokens the provider reports. With `reuse_query` (a search's single query
    text), a recent embedding of the same text by the same provider and model is reused instead
    of calling the provider again; it is charged and recorded like any other."""
    if isinstance(texts, str):
        raise TypeError("embedding_run() takes a list of strings")
    provider = embedder()
    resolved = provider.resolve_model(EMBED.key, model)
    estimate = sum(token_counter.count_tokens_batch(list(texts)))
    call = ai_job_begin(
        user=user,
        modality=EMBED,
        units=EMBED.price(tokens=estimate),
        provider=provider.name,
        model=resolved,
        summary={"texts": len(texts), "characters": sum(len(text) for text in texts), "estimated_tokens": estimate},
    )
    with ai_job_failures_recorded(call):
        cached = None
        if reuse_query and len(texts) == 1:
            cached = query_embedding_get(provider=provider.name, model=resolved, text=texts[0])
        if cached is not None:
            result = cached
        else:
            result = provider.embed(list(texts), model=resolved)
            if reuse_query and len(texts) == 1:
                query_embedding_put(provider=provider.name, model=resolved, text=texts[0], result=result)
        job = ai_job_succeed(
            call,
            output={"vectors": len(texts), "dimensions": result.dimensions, "reused": cached is not None},
            tokens=result.tokens,
            units=EMBED.price(tokens=result.tokens or estimate),
            model=result.model,
        )
    return result, job
