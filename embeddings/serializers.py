from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import models
from rest_framework import serializers

from embeddings.models import Embedding
from embeddings.services import SearchOutcome

FILTER_MAX_KEYS = 20
_SCALARS = (str, int, float, bool, type(None))


class StrictCharField(serializers.CharField):
    """Text must arrive as a JSON string: a number or boolean sent as `text` is a client bug."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A JSON number; `true` is not 1.0."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean (or the usual form spellings); `null` is not false."""

    def to_internal_value(self, data: Any) -> bool:
        if data is None:
            self.fail("invalid", input=data)
        return super().to_internal_value(data)


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


class EmbeddingCreateInputSerializer(serializers.Serializer):
    text = StrictCharField(min_length=1, trim_whitespace=True)
    auto_chunk = StrictBooleanField(required=False, default=True)
    chunk_size = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000)
    chunk_overlap = serializers.IntegerField(required=False, min_value=0, max_value=1_000_000)
    metadata = serializers.JSONField(required=False, default=dict)
    model = StrictCharField(required=False, max_length=100, trim_whitespace=True)

    def validate_text(self, value: str) -> str:
        limit = settings.EMBEDDINGS_TEXT_MAX_CHARS
        if len(value) > limit:
            raise serializers.ValidationError(f"Ensure this field has no more than {limit} characters.")
        return value

    def validate_chunk_size(self, value: int) -> int:
        low, high = settings.EMBEDDINGS_CHUNK_SIZE_MIN, settings.EMBEDDINGS_CHUNK_SIZE_MAX
        if not low <= value <= high:
            raise serializers.ValidationError(f"Must be between {low} and {high} tokens.")
        return value

    def validate_metadata(self, value: Any) -> dict:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        limit = settings.EMBEDDINGS_METADATA_MAX_BYTES
        if _json_size(value) > limit:
            raise serializers.ValidationError(f"Must be at most {limit} bytes as JSON.")
        return value

    def validate(self, attrs: dict) -> dict:
        size = attrs.get("chunk_size", settings.EMBEDDINGS_CHUNK_SIZE_DEFAULT)
        if "chunk_overlap" not in attrs:
            # The default overlap shrinks with a small explicit chunk size so it stays valid.
            attrs["chunk_overlap"] = min(settings.EMBEDDINGS_CHUNK_OVERLAP_DEFAULT, size // 4)
        if attrs["chunk_overlap"] >= size:
            raise serializers.ValidationError({"chunk_overlap": ["Must be smaller than chunkSize."]})
        attrs["chunk_size"] = size
        return attrs


class EmbeddingSearchInputSerializer(serializers.Serializer):
    query = StrictCharField(min_length=1, trim_whitespace=True)
    limit = serializers.IntegerField(required=False, default=10, min_value=1, max_value=100)
    threshold = StrictFloatField(required=False, default=0.7, min_value=-1.0, max_value=1.0)
    filter = serializers.JSONField(required=False, default=dict)
    model = StrictCharField(required=False, max_length=100, trim_whitespace=True)

    def validate_query(self, value: str) -> str:
        limit = settings.EMBEDDINGS_QUERY_MAX_CHARS
        if len(value) > limit:
            raise serializers.ValidationError(f"Ensure this field has no more than {limit} characters.")
        return value

    def validate_filter(self, value: Any) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object of metadata keys and values.")
        if len(value) > FILTER_MAX_KEYS:
            raise serializers.ValidationError(f"At most {FILTER_MAX_KEYS} keys.")
        for key, item in value.items():
            if not key:
                raise serializers.ValidationError("Keys must not be empty.")
            if not isinstance(item, _SCALARS):
                raise serializers.ValidationError(
                    f"The value of '{key}' must be a string, number, boolean or null (exact match)."
                )
        return value


class EmbeddingBulkDeleteInputSerializer(serializers.Serializer):
    # Ids are 64-bit keys: a larger number is refused here, not handed to a database that cannot bind it.
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=models.BigIntegerField.MAX_BIGINT),
        allow_empty=False,
        max_length=1000,
    )


class EmbeddingSerializer(serializers.ModelSerializer):
    class Meta:
        model = Embedding
        fields = [
            "id",
            "document_id",
            "chunk_index",
            "text",
            "model",
            "dimensions",
            "token_count",
            "metadata",
            "created_at",
        ]


class EmbeddingDetailSerializer(EmbeddingSerializer):
    vector = serializers.SerializerMethodField()

    class Meta(EmbeddingSerializer.Meta):
        fields = [*EmbeddingSerializer.Meta.fields, "vector"]

    def get_vector(self, obj: Embedding) -> list[float]:
        from embeddings.vector_index import from_bytes

        return from_bytes(bytes(obj.vector), obj.dimensions).tolist()


class EmbeddingCreatedSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField())
    document_id = serializers.UUIDField()
    chunks = serializers.IntegerField()
    tokens = serializers.IntegerField()
    dimensions = serializers.IntegerField()
    model = serializers.CharField()
    units_charged = serializers.IntegerField()


class SearchHitSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="embedding.id")
    document_id = serializers.UUIDField(source="embedding.document_id")
    chunk_index = serializers.IntegerField(source="embedding.chunk_index")
    text = serializers.CharField(source="embedding.text")
    score = serializers.FloatField()
    metadata = serializers.JSONField(source="embedding.metadata")
    created_at = serializers.DateTimeField(source="embedding.created_at")


class SearchOutcomeSerializer(serializers.Serializer):
    results = SearchHitSerializer(many=True)
    count = serializers.SerializerMethodField()
    took = serializers.FloatField(source="took_ms")
    model = serializers.CharField()
    dimensions = serializers.IntegerField()
    units_charged = serializers.IntegerField()

    def get_count(self, obj: SearchOutcome) -> int:
        return len(obj.results)


class EmbeddingModelStatsSerializer(serializers.Serializer):
    model = serializers.CharField()
    dimensions = serializers.IntegerField()
    count = serializers.IntegerField()
    documents = serializers.IntegerField()
    tokens = serializers.IntegerField()


class EmbeddingStatsSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    documents = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    models = EmbeddingModelStatsSerializer(many=True)
    dimensions = serializers.ListField(child=serializers.IntegerField())
    storage_bytes = serializers.IntegerField()
    vector_bytes = serializers.IntegerField()
    text_bytes = serializers.IntegerField()
    last_created_at = serializers.DateTimeField(allow_null=True)


class DeletedSerializer(serializers.Serializer):
    deleted = serializers.IntegerField()


class DocumentDeletedSerializer(DeletedSerializer):
    """The answer of `DELETE /api/embeddings/documents/{id}` (schema only)."""

    document_id = serializers.UUIDField()
