"""Operators see embeddings and vector spaces in the admin. Nothing is edited there; deletions
and cache rebuilds go through the services, which move the space version so searches stay current."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from embeddings import services
from embeddings.models import Embedding, VectorSpace

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("embeddings_env")]
CHANGELIST = reverse("admin:embeddings_embedding_changelist")


def found_ids(user, query: str) -> set[int]:
    return {hit.embedding["id"] for hit in services.embedding_search(user=user, query=query, threshold=0.0).results}


def test_admin_lists_and_shows_embeddings_without_changing_them(staff, user):
    created = services.embedding_create(user=user, text="Volcanoes erupt molten lava.", metadata={"k": "v"})
    pk = created.ids[0]
    listing = staff.get(CHANGELIST)
    assert listing.status_code == 200
    assert str(created.document_id) in listing.content.decode()
    detail = staff.get(reverse("admin:embeddings_embedding_change", args=[pk]))
    assert detail.status_code == 200
    assert "Volcanoes erupt molten lava." in detail.content.decode()
    assert 'name="text"' not in detail.content.decode()
    assert staff.get(reverse("admin:embeddings_embedding_add")).status_code == 403
    space = VectorSpace.objects.get(user=user)
    assert staff.get(reverse("admin:embeddings_vectorspace_changelist")).status_code == 200
    assert staff.get(reverse("admin:embeddings_vectorspace_change", args=[space.pk])).status_code == 200
    assert staff.get(reverse("admin:embeddings_vectorspace_add")).status_code == 403
    delete_space = reverse("admin:embeddings_vectorspace_delete", args=[space.pk])
    assert staff.post(delete_space, {"post": "yes"}).status_code == 403
    assert staff.get(CHANGELIST, {"q": "lava"}).status_code == 200


def test_deleting_in_the_admin_bumps_the_version_so_search_forgets_the_row(staff, user):
    kept = services.embedding_create(user=user, text="Tides follow the moon.").ids[0]
    gone = services.embedding_create(user=user, text="Volcanoes erupt molten lava.").ids[0]
    assert found_ids(user, "lava") == {kept, gone}  # the search cache now holds both rows
    version = VectorSpace.objects.get(user=user).version

    response = staff.post(reverse("admin:embeddings_embedding_delete", args=[gone]), {"post": "yes"})

    assert response.status_code == 302
    assert VectorSpace.objects.get(user=user).version == version + 1
    assert found_ids(user, "lava") == {kept}


def test_whole_document_and_bulk_delete_remove_exactly_the_selected_rows(staff, user, make_user):
    other = make_user(email="other@example.com")
    long_text = " ".join(f"Sentence number {n} is about rivers and their deltas." for n in range(12))
    mine = services.embedding_create(user=user, text=long_text, chunk_size=32, chunk_overlap=0)
    assert len(mine.ids) > 2
    theirs = services.embedding_create(user=other, text="Rivers again.")
    single = services.embedding_create(user=user, text="A lone note.").ids[0]

    response = staff.post(
        CHANGELIST, {"action": "delete_documents", "_selected_action": [str(mine.ids[0])]}, follow=True
    )

    assert f"Deleted {len(mine.ids)} chunk(s)." in response.content.decode()
    assert set(Embedding.objects.values_list("id", flat=True)) == {*theirs.ids, single}
    staff.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [str(single)], "post": "yes"})
    assert list(Embedding.objects.values_list("id", flat=True)) == theirs.ids
    assert found_ids(user, "note") == set()
    assert found_ids(other, "rivers") == set(theirs.ids)


def test_refresh_action_makes_searches_reload_from_the_database(staff, user):
    pk = services.embedding_create(user=user, text="Glaciers carve valleys.").ids[0]
    assert found_ids(user, "glacier") == {pk}
    space = VectorSpace.objects.get(user=user)

    response = staff.post(
        reverse("admin:embeddings_vectorspace_changelist"),
        {"action": "refresh", "_selected_action": [str(space.pk)]},
        follow=True,
    )

    assert "1 space(s) will be reloaded" in response.content.decode()
    assert VectorSpace.objects.get(pk=space.pk).version == space.version + 1
    assert found_ids(user, "glacier") == {pk}


def test_changelist_query_count_does_not_grow(staff, user, make_user):
    services.embedding_create(user=user, text="One row.")
    with CaptureQueriesContext(connection) as few:
        assert staff.get(CHANGELIST).status_code == 200
    for index in range(5):
        services.embedding_create(user=make_user(email=f"e{index}@example.com"), text=f"Row {index}.")
    with CaptureQueriesContext(connection) as many:
        page = staff.get(CHANGELIST).content.decode()
    assert "e4@example.com" in page
    assert len(many) == len(few)
