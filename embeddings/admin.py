"""Staff views of stored embeddings. Rows are deleted through `embeddings.services`, which bumps
the vector-space versions in the same transaction so every process's search cache stays current."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from embeddings import services
from embeddings.models import Embedding, VectorSpace


@admin.register(VectorSpace)
class VectorSpaceAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "model", "dimensions", "version", "updated_at"]
    list_filter = ["model", "dimensions"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    # The version is the caches' staleness signal: only the services may move it.
    readonly_fields = ["user", "model", "dimensions", "version", "updated_at"]
    actions = ["refresh"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: VectorSpace | None = None) -> bool:
        # Deleting a space would drop its rows without a version bump; spaces go with their user.
        return False

    @admin.action(description="Rebuild the search caches of the selected spaces", permissions=["view"])
    def refresh(self, request: HttpRequest, queryset: QuerySet) -> None:
        space_ids = list(queryset.values_list("id", flat=True))
        services.vector_spaces_refresh(space_ids=space_ids)
        message = f"{len(space_ids)} space(s) will be reloaded from the database on their next search."
        self.message_user(request, message, messages.SUCCESS)


@admin.register(Embedding)
class EmbeddingAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "document_id", "chunk_index", "model", "dimensions", "token_count", "created_at"]
    list_filter = ["model", "dimensions", "created_at"]
    search_fields = ["user__email", "document_id", "text"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    raw_id_fields = ["user", "space"]
    # Rows are written through the API; the vector itself is bytes, not worth showing.
    exclude = ["vector"]
    readonly_fields = [field.name for field in Embedding._meta.fields if field.name != "vector"]
    actions = ["delete_documents"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer("vector")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Embedding | None = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Embedding) -> None:
        services.embeddings_delete(rows=Embedding.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        services.embeddings_delete(rows=queryset)

    @admin.action(description="Delete the whole documents of the selected chunks", permissions=["delete"])
    def delete_documents(self, request: HttpRequest, queryset: QuerySet) -> None:
        # Document ids are minted by the server (uuid4), so they are unique across users.
        documents = queryset.values("document_id")
        deleted = services.embeddings_delete(rows=Embedding.objects.filter(document_id__in=documents))
        self.message_user(request, f"Deleted {deleted} chunk(s).", messages.SUCCESS)
