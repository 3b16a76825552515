"""Operators see embeddings and vector spaces in the admin, read-only (writes go through the services)."""

from __future__ import annotations

import pytest
from django.test import Client

from embeddings import services
from embeddings.models import Embedding, VectorSpace

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("embeddings_env")]


@pytest.fixture
def staff(make_user) -> Client:
    client = Client()
    client.force_login(make_user(email="ops@example.com", is_staff=True, is_superuser=True))
    return client


def test_admin_lists_and_shows_embeddings_without_changing_them(staff, user):
    created = services.embedding_create(user=user, text="Volcanoes erupt molten lava.", metadata={"k": "v"})
    pk = created.ids[0]
    listing = staff.get("/admin/embeddings/embedding/")
    assert listing.status_code == 200
    assert str(created.document_id) in listing.content.decode()
    detail = staff.get(f"/admin/embeddings/embedding/{pk}/change/")
    assert detail.status_code == 200
    assert "Volcanoes erupt molten lava." in detail.content.decode()
    assert staff.get("/admin/embeddings/embedding/add/").status_code == 403
    assert staff.post(f"/admin/embeddings/embedding/{pk}/delete/", {"post": "yes"}).status_code == 403
    assert Embedding.objects.filter(pk=pk).exists()
    space = VectorSpace.objects.get(user=user)
    assert staff.get("/admin/embeddings/vectorspace/").status_code == 200
    assert staff.get(f"/admin/embeddings/vectorspace/{space.pk}/change/").status_code == 200
    assert staff.get("/admin/embeddings/vectorspace/add/").status_code == 403
    assert staff.post(f"/admin/embeddings/vectorspace/{space.pk}/delete/", {"post": "yes"}).status_code == 403
    assert staff.get("/admin/embeddings/embedding/", {"q": "lava"}).status_code == 200
