"""`/api/embeddings/...`: create, search, list, stats, detail and deletes (the seed's table)."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import request_user
from core import ratelimit
from core.api.envelope import counted, ok
from core.api.pagination import paginate
from core.exceptions import InvalidInput, NotFound
from embeddings import openapi_examples as examples
from embeddings import selectors, services
from embeddings.serializers import (
    DeletedSerializer,
    DocumentDeletedSerializer,
    EmbeddingBulkDeleteInputSerializer,
    EmbeddingCreatedSerializer,
    EmbeddingCreateInputSerializer,
    EmbeddingDetailSerializer,
    EmbeddingSearchInputSerializer,
    EmbeddingSerializer,
    EmbeddingStatsSerializer,
    SearchOutcomeSerializer,
)

TAGS = ["embeddings"]


def _valid(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class EmbeddingCreateView(APIView):
    rate_category = ratelimit.AI

    @extend_schema(
        tags=TAGS,
        request=EmbeddingCreateInputSerializer,
        responses={201: EmbeddingCreatedSerializer, **examples.ERRORS},
        examples=[examples.CREATE_REQUEST, examples.CREATED],
    )
    def post(self, request: Request) -> Response:
        data = _valid(EmbeddingCreateInputSerializer, request.data)
        created = services.embedding_create(user=request_user(request), **data)
        return ok(
            EmbeddingCreatedSerializer(created).data,
            message=f"Created {counted(created.chunks, 'embedding')}",
            status=status.HTTP_201_CREATED,
        )


class EmbeddingSearchView(APIView):
    rate_category = ratelimit.AI

    @extend_schema(
        tags=TAGS,
        request=EmbeddingSearchInputSerializer,
        responses={200: SearchOutcomeSerializer, **examples.ERRORS},
        examples=[examples.SEARCH_REQUEST, examples.SEARCH_FILTERED_REQUEST, examples.FOUND],
    )
    def post(self, request: Request) -> Response:
        data = _valid(EmbeddingSearchInputSerializer, request.data)
        outcome = services.embedding_search(
            user=request_user(request),
            query=data["query"],
            limit=data["limit"],
            threshold=data["threshold"],
            metadata_filter=data["filter"],
            model=data.get("model"),
        )
        return ok(SearchOutcomeSerializer(outcome).data, message=f"Found {counted(len(outcome.results), 'result')}")


class EmbeddingListView(APIView):
    rate_category = ratelimit.GENERAL

    @extend_schema(
        tags=TAGS,
        parameters=[OpenApiParameter("documentId", str, description="Only the chunks of this document, in order.")],
        responses={200: EmbeddingSerializer(many=True)},
        examples=[examples.EMBEDDINGS],
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("documentId") or request.query_params.get("document_id")
        document_id = None
        if raw:
            try:
                document_id = uuid.UUID(raw)
            except ValueError:
                raise InvalidInput(
                    "documentId must be a UUID.", errors={"document_id": ["Must be a valid UUID."]}
                ) from None
        rows = selectors.embedding_list(user=request_user(request), document_id=document_id)
        return paginate(request=request, queryset=rows, serializer_class=EmbeddingSerializer)


class EmbeddingStatsView(APIView):
    rate_category = ratelimit.GENERAL

    @extend_schema(tags=TAGS, responses={200: EmbeddingStatsSerializer}, examples=[examples.STATS])
    def get(self, request: Request) -> Response:
        return ok(EmbeddingStatsSerializer(selectors.embedding_stats(user=request_user(request))).data)


class EmbeddingDetailView(APIView):
    rate_category = ratelimit.GENERAL

    @extend_schema(tags=TAGS, responses={200: EmbeddingDetailSerializer}, examples=[examples.EMBEDDING])
    def get(self, request: Request, embedding_id: int) -> Response:
        embedding = selectors.embedding_get(user=request_user(request), embedding_id=embedding_id)
        return ok(EmbeddingDetailSerializer(embedding).data)

    @extend_schema(tags=TAGS, responses={200: DeletedSerializer}, examples=[examples.EMBEDDING_DELETED])
    def delete(self, request: Request, embedding_id: int) -> Response:
        user = request_user(request)
        selectors.embedding_get(user=user, embedding_id=embedding_id)  # another user's id: 404
        deleted = services.embedding_delete(user=user, embedding_id=embedding_id)
        return ok({"deleted": deleted}, message="Embedding deleted")


class EmbeddingBulkDeleteView(APIView):
    rate_category = ratelimit.GENERAL

    @extend_schema(
        tags=TAGS,
        request=EmbeddingBulkDeleteInputSerializer,
        responses={200: DeletedSerializer},
        examples=[examples.BULK_DELETE_REQUEST, examples.BULK_DELETED],
    )
    def post(self, request: Request) -> Response:
        data = _valid(EmbeddingBulkDeleteInputSerializer, request.data)
        deleted = services.embedding_bulk_delete(user=request_user(request), ids=data["ids"])
        return ok({"deleted": deleted}, message=f"Deleted {counted(deleted, 'embedding')}")


class DocumentView(APIView):
    rate_category = ratelimit.GENERAL

    @extend_schema(tags=TAGS, responses={200: DocumentDeletedSerializer}, examples=[examples.DOCUMENT_DELETED])
    def delete(self, request: Request, document_id: uuid.UUID) -> Response:
        deleted = services.document_delete(user=request_user(request), document_id=document_id)
        if not deleted:
            raise NotFound("Document not found.")
        return ok({"deleted": deleted, "document_id": document_id}, message=f"Deleted {counted(deleted, 'chunk')}")
