from django.contrib import admin

from embeddings.models import Embedding, VectorSpace


@admin.register(VectorSpace)
class VectorSpaceAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "model", "dimensions", "version", "updated_at"]
    list_filter = ["model", "dimensions"]
    search_fields = ["user__email"]
    raw_id_fields = ["user"]
    # The version is the cache's staleness signal: only writes through the services may move it.
    readonly_fields = ["user", "model", "dimensions", "version", "updated_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting a space would drop its rows without a version bump; accounts go with their user.
        return False


@admin.register(Embedding)
class EmbeddingAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "document_id", "chunk_index", "model", "dimensions", "token_count", "created_at"]
    list_filter = ["model", "dimensions"]
    search_fields = ["user__email", "document_id", "text"]
    date_hierarchy = "created_at"
    raw_id_fields = ["user", "space"]
    # Rows are written and deleted through the services, which keep the vector caches current.
    readonly_fields = [field.name for field in Embedding._meta.fields if field.name != "vector"]
    exclude = ["vector"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("vector").select_related("user")

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
