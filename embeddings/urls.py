from django.urls import path

from embeddings import views

urlpatterns = [
    path("create", views.EmbeddingCreateView.as_view(), name="embeddings-create"),
    path("search", views.EmbeddingSearchView.as_view(), name="embeddings-search"),
    path("stats", views.EmbeddingStatsView.as_view(), name="embeddings-stats"),
    path("bulk-delete", views.EmbeddingBulkDeleteView.as_view(), name="embeddings-bulk-delete"),
    path("documents/<uuid:document_id>", views.DocumentView.as_view(), name="embeddings-document"),
    path("<int:embedding_id>", views.EmbeddingDetailView.as_view(), name="embeddings-detail"),
]
