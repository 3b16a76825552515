from __future__ import annotations

from django.conf import settings
from django.db import models
from pgvector.django import HnswIndex, VectorField


class VectorSpace(models.Model):
    """All of one user's vectors made by one model with one number of dimensions: the set a
    search runs over (vectors of different models are not comparable).

    `version` is bumped with an F() update in the same transaction as every write to the set, so
    any process can tell whether the matrix it holds in memory (or the `.npy` cache on disk) is
    still current by reading one integer.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="vector_spaces")
    model = models.CharField(max_length=100)
    dimensions = models.PositiveIntegerField()
    version = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "model", "dimensions"], name="embeddings_space_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}/{self.model}/{self.dimensions} v{self.version}"

    @property
    def cache_key(self) -> str:
        return f"space-{self.pk}"


class Embedding(models.Model):
    """One embedded chunk of text. `vector` holds the unit-length float32 vector as raw
    little-endian bytes: the source of truth, portable across SQLite and PostgreSQL."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="embeddings")
    space = models.ForeignKey(VectorSpace, on_delete=models.CASCADE, related_name="embeddings")
    document_id = models.UUIDField()
    chunk_index = models.PositiveIntegerField(default=0)
    text = models.TextField()
    vector = models.BinaryField()
    model = models.CharField(max_length=100)
    dimensions = models.PositiveIntegerField()
    token_count = models.PositiveIntegerField()
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="embeddings_user_created"),
            models.Index(fields=["user", "document_id", "chunk_index"], name="embeddings_user_document"),
            models.Index(fields=["space", "id"], name="embeddings_space_id"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.chunk_index} ({self.model})"


class PgVector(models.Model):
    """The pgvector copy of a 384-dimension embedding, for search in PostgreSQL (embeddings/pgvector.py).

    Unmanaged: the table exists only on PostgreSQL servers with the `vector` extension, where
    migration 0002 or `manage.py embeddings_pgvector_backfill` creates it (with the HNSW index
    below and ON DELETE CASCADE from both parents, so deleting embeddings needs no query here)."""

    embedding = models.OneToOneField(
        Embedding, primary_key=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    space = models.ForeignKey(VectorSpace, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    vector = VectorField(dimensions=384)

    class Meta:
        managed = False
        db_table = "embeddings_pgvector"
        indexes = [
            HnswIndex(
                name="embeddings_pgvector_hnsw",
                fields=["vector"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            )
        ]

    def __str__(self) -> str:
        return f"pgvector of {self.embedding_id}"
