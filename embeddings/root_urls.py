from django.urls import path

from embeddings import views

urlpatterns = [
    path("", views.EmbeddingListView.as_view(), name="embeddings-list"),
]
