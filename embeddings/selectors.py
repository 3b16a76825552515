from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, F, IntegerField, QuerySet, Sum
from django.db.models.expressions import Func

from core.compiled_queries import CompiledQuery, PerConnection, query_compile
from core.exceptions import NotFound
from embeddings.models import Embedding, VectorSpace

if TYPE_CHECKING:
    from django.db.models.sql.compiler import SQLCompiler, _AsSqlType

    from accounts.models import User

_SPACE_VERSION_SQL = (
    f"SELECT id, version FROM {VectorSpace._meta.db_table} "  # noqa: S608 (a constant table name; values are parameters)
    "WHERE user_id = %s AND model = %s AND dimensions = %s"
)


class OctetLength(Func):
    """Bytes of a text column (UTF-8), where Length() would count characters."""

    function = "OCTET_LENGTH"
    output_field = IntegerField()

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any) -> _AsSqlType:
        return self.as_sql(compiler, connection, template="LENGTH(CAST(%(expressions)s AS BLOB))", **extra_context)


def embedding_list(*, user: User, document_id: uuid.UUID | None = None) -> QuerySet[Embedding]:
    rows = Embedding.objects.filter(user_id=user.pk).defer("vector")
    if document_id is not None:
        rows = rows.filter(document_id=document_id).order_by("chunk_index", "id")
    return rows


def embedding_get(*, user: User, embedding_id: int) -> Embedding:
    embedding = Embedding.objects.filter(user_id=user.pk, pk=embedding_id).first()
    if embedding is None:
        raise NotFound("Embedding not found.")
    return embedding


class EmbeddingModelStats(TypedDict):
    model: str
    dimensions: int
    count: int
    documents: int
    tokens: int


class EmbeddingStats(TypedDict):
    count: int
    documents: int
    total_tokens: int
    models: list[EmbeddingModelStats]
    dimensions: list[int]
    storage_bytes: int
    vector_bytes: int
    text_bytes: int
    last_created_at: datetime | None


def embedding_stats(*, user: User) -> EmbeddingStats:
    """Counts, tokens and storage of the user's embeddings, with the models and dimensions in use."""
    rows = Embedding.objects.filter(user_id=user.pk)
    totals = rows.aggregate(
        count=Count("id"),
        documents=Count("document_id", distinct=True),
        total_tokens=Sum("token_count"),
        vector_bytes=Sum(F("dimensions") * 4),
        text_bytes=Sum(OctetLength("text")),
    )
    models = list(
        rows.values("model", "dimensions")
        .annotate(count=Count("id"), documents=Count("document_id", distinct=True), tokens=Sum("token_count"))
        .order_by("model", "dimensions")
    )
    vector_bytes = totals["vector_bytes"] or 0
    text_bytes = totals["text_bytes"] or 0
    latest = rows.order_by("-created_at").values_list("created_at", flat=True).first()
    return {
        "count": totals["count"],
        "documents": totals["documents"],
        "total_tokens": totals["total_tokens"] or 0,
        "models": [
            {
                "model": item["model"],
                "dimensions": item["dimensions"],
                "count": item["count"],
                "documents": item["documents"],
                "tokens": item["tokens"] or 0,
            }
            for item in models
        ],
        "dimensions": sorted({item["dimensions"] for item in models}),
        "storage_bytes": vector_bytes + text_bytes,
        "vector_bytes": vector_bytes,
        "text_bytes": text_bytes,
        "last_created_at": latest,
    }


def space_version_get(*, user_id: int, model: str, dimensions: int) -> tuple[int, int] | None:
    """(id, version) of a user's vector space, or None. Every search runs this to decide whether its
    cached matrix is current, so it is one plain statement on the unique (user, model, dimensions) index:
    building the same query through the ORM costs about 0.3 ms of CPU, as much as the search
    itself over 10,000 vectors."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_SPACE_VERSION_SQL, [user_id, model, dimensions])
        row = cursor.fetchone()
    return (int(row[0]), int(row[1])) if row else None


# Compiled per connection and number of ids (core.compiled_queries): building the `values()`
# queryset below and compiling it cost about as much as a search over 10,000 vectors.
_hit_queries: PerConnection[tuple[CompiledQuery, list[str]]] = PerConnection()


def embedding_rows_by_id(*, ids: list[int], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """`Embedding.objects.filter(id__in=ids).order_by().values(*fields)` as a list, through a
    statement compiled once per connection and number of ids; rows pass through the ORM's own
    converters (JSON, datetimes), so they are what the queryset would give."""
    if not ids:
        return []
    connection = connections[DEFAULT_DB_ALIAS]  # this thread's own connection, not the proxy

    def build() -> tuple[CompiledQuery, list[str]]:
        sentinels = [-1_000_000_007 - i for i in range(len(ids))]
        query = Embedding.objects.filter(id__in=sentinels).order_by().values(*fields).query
        return query_compile(query, connection, sentinels), [
            *query.extra_select,
            *query.values_select,
            *query.annotation_select,
        ]

    compiled, names = _hit_queries.get(connection, (fields, len(ids)), build)
    rows = compiled.rows(connection, ids)
    return [dict(zip(names, row, strict=True)) for row in rows]
