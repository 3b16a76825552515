"""`/api/embeddings/...` with the local all-MiniLM-L6-v2 engine, on the database under test."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from embeddings.models import Embedding, VectorSpace
from embeddings.vector_index import from_bytes
from quotas.selectors import quota_account_get
from quotas.services import quota_limit_set

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("embeddings_env")]

DOCS = {
    "cats": "Cats sleep for most of the day and purr when they are content.",
    "rust": "The Rust compiler's borrow checker rejects programs with data races.",
    "bread": "Knead the dough for ten minutes, then let it rise until doubled in size.",
    "rain": "Heavy rainfall caused the river to overflow its banks last night.",
    "stocks": "Shares of the chip maker fell sharply after its quarterly earnings report.",
}


def create(client, text, **extra):
    return client.post("/api/embeddings/create", {"text": text, **extra}, format="json")


def search(client, query, **extra):
    return client.post("/api/embeddings/search", {"query": query, **extra}, format="json")


def used_units(user) -> int:
    user.refresh_from_db()
    if hasattr(user, "_quota_account_cache"):
        del user._quota_account_cache
    return quota_account_get(user=user).used


@pytest.fixture
def corpus(client_a):
    ids = {}
    for name, text in DOCS.items():
        response = create(client_a, text, metadata={"topic": name, "rank": len(ids), "public": len(ids) % 2 == 0})
        assert response.status_code == 201, response.content
        ids[name] = response.json()["data"]["ids"][0]
    return ids


# -- create ------------------------------------------------------------------------------------


def test_create_stores_a_normalized_float32_vector(client_a, user):
    response = create(client_a, DOCS["cats"], autoChunk=True, metadata={"source": "notes", "camelKey": 1})
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert data["chunks"] == 1
    assert data["dimensions"] == 384
    assert data["model"] == "all-MiniLM-L6-v2"
    assert data["tokens"] == 17  # WordPiece tokens of the text with [CLS] and [SEP]
    assert data["unitsCharged"] == 1
    uuid.UUID(data["documentId"])
    row = Embedding.objects.get(pk=data["ids"][0])
    assert row.user_id == user.pk
    assert str(row.document_id) == data["documentId"]
    assert row.text == DOCS["cats"]
    assert row.metadata == {"source": "notes", "camelKey": 1}  # user metadata keeps its own keys
    assert (row.model, row.dimensions, row.token_count, row.chunk_index) == ("all-MiniLM-L6-v2", 384, 17, 0)
    vector = from_bytes(bytes(row.vector), 384)
    assert len(bytes(row.vector)) == 384 * 4
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    assert used_units(user) == 1
    space = VectorSpace.objects.get(user=user)
    assert (space.model, space.dimensions, space.version) == ("all-MiniLM-L6-v2", 384, 1)


def test_auto_chunk_splits_long_text_into_overlapping_chunks(client_a, user):
    sentences = [f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(300)]
    text = " ".join(sentences)
    response = create(client_a, text, chunkSize=64, chunkOverlap=16)
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    rows = list(Embedding.objects.filter(document_id=data["documentId"]).order_by("chunk_index"))
    assert data["chunks"] == len(rows) == len(data["ids"]) > 20
    assert [r.chunk_index for r in rows] == list(range(len(rows)))
    assert all(r.token_count <= 64 + 2 for r in rows)
    assert data["tokens"] == sum(r.token_count for r in rows)
    assert rows[1].text.split(". ")[0] in rows[0].text  # the second chunk starts inside the first
    assert used_units(user) == -(-data["tokens"] // 1000)
    assert data["unitsCharged"] == used_units(user)


def test_default_auto_chunk_handles_text_beyond_the_model_window(client_a):
    text = " ".join(f"Line {i} of a long report about quarterly figures." for i in range(120))
    response = create(client_a, text)
    assert response.status_code == 201
    assert response.json()["data"]["chunks"] > 1


def test_without_auto_chunk_a_text_beyond_the_window_is_refused(client_a, user):
    text = " ".join(f"Line {i} of a long report about quarterly figures." for i in range(120))
    response = create(client_a, text, autoChunk=False)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "text" in response.json()["errors"]
    assert not Embedding.objects.exists()
    assert used_units(user) == 0


def test_without_auto_chunk_a_short_text_is_one_embedding(client_a):
    response = create(client_a, "One line.\n\nAnd another paragraph.", autoChunk=False)
    assert response.status_code == 201
    assert response.json()["data"]["chunks"] == 1
    assert Embedding.objects.get().text == "One line.\n\nAnd another paragraph."


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "text"),
        ({"text": ""}, "text"),
        ({"text": "   \n "}, "text"),
        ({"text": None}, "text"),
        ({"text": 12345}, "text"),
        ({"text": ["a"]}, "text"),
        ({"text": "x" * 100_001}, "text"),
        ({"text": "ok", "autoChunk": "maybe"}, "autoChunk"),
        ({"text": "ok", "autoChunk": None}, "autoChunk"),
        ({"text": "ok", "chunkSize": "big"}, "chunkSize"),
        ({"text": "ok", "chunkSize": 31}, "chunkSize"),
        ({"text": "ok", "chunkSize": 513}, "chunkSize"),
        ({"text": "ok", "chunkSize": 64.5}, "chunkSize"),
        ({"text": "ok", "chunkSize": True}, "chunkSize"),
        ({"text": "ok", "chunkOverlap": -1}, "chunkOverlap"),
        ({"text": "ok", "chunkSize": 64, "chunkOverlap": 64}, "chunkOverlap"),
        ({"text": "ok", "metadata": "tag"}, "metadata"),
        ({"text": "ok", "metadata": ["a", "b"]}, "metadata"),
        ({"text": "ok", "metadata": {"blob": "x" * 9000}}, "metadata"),
        ({"text": "ok", "model": 7}, "model"),
    ],
)
def test_create_rejects_bad_input(client_a, user, payload, field):
    response = client_a.post("/api/embeddings/create", payload, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["success"] is False
    assert body["code"] == "validation_error"
    assert field in body["errors"]
    assert not Embedding.objects.exists()
    assert used_units(user) == 0


def test_text_of_exactly_the_limit_is_accepted(client_a, settings):
    settings.EMBEDDINGS_TEXT_MAX_CHARS = 2000
    assert create(client_a, ("word " * 400).strip() + "!").status_code == 201
    assert create(client_a, "x" * 2001).status_code == 400


def test_chunk_size_beyond_the_local_model_window_is_refused(client_a):
    response = create(client_a, "Some text.", chunkSize=300)
    assert response.status_code == 400
    assert "254" in response.json()["message"]
    assert "chunkSize" in response.json()["errors"]


def test_unknown_model_is_refused(client_a):
    response = create(client_a, "Some text.", model="text-embedding-3-small")
    assert response.status_code == 400
    assert "all-MiniLM-L6-v2" in response.json()["message"]


def test_create_needs_a_token(api):
    response = create(api, "Some text.")
    assert response.status_code == 401
    assert response.json()["success"] is False


def test_create_with_exhausted_quota_is_429_and_stores_nothing(client_a, user):
    quota_limit_set(account=quota_account_get(user=user), limit=0)
    response = create(client_a, DOCS["cats"])
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "quota_exceeded"
    assert body["unitsNeeded"] == 1
    assert "Retry-After" in response
    assert not Embedding.objects.exists()


def test_quota_is_reserved_from_the_token_estimate(client_a, user):
    # 2,200 tokens of chunks need 3 units: refused with 2 left, before any model work.
    quota_limit_set(account=quota_account_get(user=user), limit=2)
    text = " ".join(f"Paragraph {i} describes the alpine meadow flowers in spring." for i in range(170))
    response = create(client_a, text)
    assert response.status_code == 429
    assert response.json()["unitsNeeded"] >= 3
    assert not Embedding.objects.exists()


# -- search ------------------------------------------------------------------------------------


def test_search_finds_the_paraphrased_chunk_first(client_a, corpus, user):
    before = used_units(user)
    response = search(client_a, "My kitten naps all day long and purrs happily.", threshold=0.2)
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    results = data["results"]
    assert results[0]["id"] == corpus["cats"]
    assert results[0]["text"] == DOCS["cats"]
    assert results[0]["metadata"] == {"topic": "cats", "rank": 0, "public": True}
    assert set(results[0]) == {"id", "documentId", "chunkIndex", "text", "score", "metadata", "createdAt"}
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert all(0.2 <= s <= 1.0 for s in scores)
    assert isinstance(data["took"], float | int)
    assert data["model"] == "all-MiniLM-L6-v2"
    assert data["dimensions"] == 384
    assert used_units(user) == before + 1  # a query is an embedding: 1 unit per started 1,000 tokens


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Why won't my program compile because of ownership errors?", "rust"),
        ("How long should I let bread dough prove?", "bread"),
        ("The stream flooded after the storm.", "rain"),
        ("Semiconductor stock drops on earnings miss", "stocks"),
    ],
)
def test_search_paraphrases(client_a, corpus, query, expected):
    results = search(client_a, query, threshold=0.0).json()["data"]["results"]
    assert results[0]["id"] == corpus[expected]


def test_search_score_is_the_cosine_similarity(client_a, corpus):
    from ai_services.providers.local.minilm import get_embedder

    query = "A cat purring on the sofa"
    result = search(client_a, query, threshold=-1, limit=100).json()["data"]["results"]
    stored = {r.pk: from_bytes(bytes(r.vector), 384) for r in Embedding.objects.all()}
    q = get_embedder().embed([query])[0]
    for hit in result:
        assert hit["score"] == pytest.approx(float(stored[hit["id"]] @ q), abs=1e-5)
    assert len(result) == len(DOCS)


def test_threshold_and_limit(client_a, corpus):
    everything = search(client_a, "anything at all", threshold=-1, limit=100).json()["data"]["results"]
    assert len(everything) == len(DOCS)
    two = search(client_a, "anything at all", threshold=-1, limit=2).json()["data"]["results"]
    assert [r["id"] for r in two] == [r["id"] for r in everything[:2]]
    exact = search(client_a, DOCS["bread"], threshold=0.99).json()["data"]["results"]
    assert [r["id"] for r in exact] == [corpus["bread"]]
    assert exact[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert search(client_a, "Completely unrelated astrophysics lecture", threshold=0.9).json()["data"]["results"] == []


def test_default_threshold_is_0_7(client_a, corpus):
    results = search(client_a, DOCS["rain"]).json()["data"]["results"]
    assert [r["id"] for r in results] == [corpus["rain"]]  # the others score far below 0.7


def test_filter_matches_metadata_exactly(client_a, corpus):
    def ids(flt):
        response = search(client_a, "anything", threshold=-1, limit=100, filter=flt)
        assert response.status_code == 200, response.content
        return {r["id"] for r in response.json()["data"]["results"]}

    assert ids({"topic": "bread"}) == {corpus["bread"]}
    assert ids({"public": True}) == {corpus["cats"], corpus["bread"], corpus["stocks"]}
    assert ids({"public": True, "rank": 2}) == {corpus["bread"]}
    assert ids({"rank": 1}) == {corpus["rust"]}
    assert ids({"rank": "1"}) == set()  # types matter: "1" is not 1
    assert ids({"rank": True}) == set()  # nor is true
    assert ids({"topic": "nothing"}) == set()
    assert ids({"missing": None}) == set()
    assert ids({}) == set(corpus.values())


def test_search_sees_only_the_callers_embeddings(client_a, auth_client, make_user, corpus):
    bob = make_user(email="bob@example.com")
    client_b = auth_client(bob)
    assert search(client_b, DOCS["cats"], threshold=-1).json()["data"]["results"] == []
    mine = create(client_b, DOCS["cats"]).json()["data"]["ids"][0]
    results = search(client_b, DOCS["cats"], threshold=-1, limit=100).json()["data"]["results"]
    assert [r["id"] for r in results] == [mine]


def test_search_only_compares_vectors_of_the_same_model_and_dimensions(client_a, user, corpus):
    # A vector of another model that would match perfectly if it were compared.
    other = VectorSpace.objects.create(user=user, model="text-embedding-3-small", dimensions=384)
    from ai_services.providers.local.minilm import get_embedder
    from embeddings.vector_index import to_bytes

    alien = Embedding.objects.create(
        user=user,
        space=other,
        document_id=uuid.uuid4(),
        text="alien",
        vector=to_bytes(get_embedder().embed(["cat nap"])[0]),
        model="text-embedding-3-small",
        dimensions=384,
        token_count=3,
    )
    results = search(client_a, "cat nap", threshold=-1, limit=100).json()["data"]["results"]
    assert alien.pk not in {r["id"] for r in results}
    assert len(results) == len(DOCS)


def test_search_with_no_embeddings_is_empty(client_a):
    response = search(client_a, "hello")
    assert response.status_code == 200
    assert response.json()["data"]["results"] == []


def test_search_sees_writes_at_once(client_a, corpus):
    query = "How do I bake a loaf of bread?"
    assert search(client_a, query, threshold=0.1).json()["data"]["results"][0]["id"] == corpus["bread"]
    new = create(client_a, "To bake a loaf of bread, heat the oven and bake it for forty minutes.").json()["data"]
    assert search(client_a, query, threshold=0.1).json()["data"]["results"][0]["id"] == new["ids"][0]
    assert client_a.delete(f"/api/embeddings/{new['ids'][0]}").status_code == 200
    assert search(client_a, query, threshold=0.1).json()["data"]["results"][0]["id"] == corpus["bread"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "query"),
        ({"query": ""}, "query"),
        ({"query": "  "}, "query"),
        ({"query": 5}, "query"),
        ({"query": "x" * 10_001}, "query"),
        ({"query": "q", "limit": 0}, "limit"),
        ({"query": "q", "limit": 101}, "limit"),
        ({"query": "q", "limit": -5}, "limit"),
        ({"query": "q", "limit": "ten"}, "limit"),
        ({"query": "q", "limit": 2.5}, "limit"),
        ({"query": "q", "limit": True}, "limit"),
        ({"query": "q", "limit": None}, "limit"),
        ({"query": "q", "threshold": 1.01}, "threshold"),
        ({"query": "q", "threshold": -1.5}, "threshold"),
        ({"query": "q", "threshold": "high"}, "threshold"),
        ({"query": "q", "threshold": True}, "threshold"),
        ({"query": "q", "threshold": [0.5]}, "threshold"),
        ({"query": "q", "filter": "topic"}, "filter"),
        ({"query": "q", "filter": ["a"]}, "filter"),
        ({"query": "q", "filter": {"nested": {"a": 1}}}, "filter"),
        ({"query": "q", "filter": {"list": [1]}}, "filter"),
        ({"query": "q", "filter": {f"k{i}": i for i in range(21)}}, "filter"),
    ],
)
def test_search_rejects_bad_input(client_a, user, payload, field):
    response = client_a.post("/api/embeddings/search", payload, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["errors"]
    assert used_units(user) == 0


def test_search_bounds_are_inclusive(client_a, corpus):
    for extra in ({"limit": 1}, {"limit": 100}, {"threshold": -1}, {"threshold": 1}, {"threshold": 0}):
        assert search(client_a, "cats", **extra).status_code == 200, extra


def test_search_with_exhausted_quota_is_429(client_a, user, corpus):
    account = quota_account_get(user=user)
    quota_limit_set(account=account, limit=account.used)
    response = search(client_a, "cats")
    assert response.status_code == 429
    assert response.json()["code"] == "quota_exceeded"


def test_search_needs_a_token(api):
    assert search(api, "cats").status_code == 401


def test_search_is_rate_limited_as_ai(client_a, real_rate_limits):
    burst = real_rate_limits["ai"]["burst"][0]
    statuses = [search(client_a, "").status_code for _ in range(burst + 1)]
    assert statuses[:burst] == [400] * burst
    assert statuses[-1] == 429
    response = search(client_a, "cats")
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1


def test_create_is_rate_limited_as_ai(client_a, real_rate_limits):
    burst = real_rate_limits["ai"]["burst"][0]
    for _ in range(burst):
        create(client_a, "")
    response = create(client_a, "Some text.")
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"


def test_reads_are_rate_limited_as_general(client_a, real_rate_limits):
    burst = real_rate_limits["general"]["burst"][0]
    assert all(client_a.get("/api/embeddings").status_code == 200 for _ in range(burst))
    assert client_a.get("/api/embeddings/stats").status_code == 429


# -- list, stats, detail -----------------------------------------------------------------------


def test_list_is_paginated_and_filtered_by_document(client_a, auth_client, make_user, corpus):
    long_doc = create(client_a, " ".join(f"Fact {i} about glaciers and ice sheets." for i in range(80)), chunkSize=32)
    document_id = long_doc.json()["data"]["documentId"]
    chunks = long_doc.json()["data"]["chunks"]

    response = client_a.get("/api/embeddings", {"limit": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["meta"]["pagination"] == {
        "page": 1,
        "limit": 3,
        "total": len(DOCS) + chunks,
        "pages": -(-(len(DOCS) + chunks) // 3),
    }
    assert len(body["data"]) == 3
    assert "vector" not in body["data"][0]
    assert set(body["data"][0]) >= {"id", "documentId", "chunkIndex", "text", "tokenCount", "metadata", "createdAt"}

    only = client_a.get("/api/embeddings", {"documentId": document_id, "limit": 100}).json()
    assert [item["chunkIndex"] for item in only["data"]] == list(range(chunks))
    assert {item["documentId"] for item in only["data"]} == {document_id}

    bob = auth_client(make_user(email="bob@example.com"))
    assert bob.get("/api/embeddings").json()["meta"]["pagination"]["total"] == 0
    assert bob.get("/api/embeddings", {"documentId": document_id}).json()["data"] == []


@pytest.mark.parametrize("params", [{"documentId": "not-a-uuid"}, {"limit": 0}, {"limit": 101}, {"page": "x"}])
def test_list_rejects_bad_parameters(client_a, params):
    response = client_a.get("/api/embeddings", params)
    assert response.status_code == 400
    assert response.json()["success"] is False


def test_list_needs_a_token(api):
    assert api.get("/api/embeddings").status_code == 401


def test_stats(client_a, corpus, auth_client, make_user):
    create(client_a, " ".join(f"Fact {i} about glaciers and ice sheets." for i in range(40)), chunkSize=32)
    response = client_a.get("/api/embeddings/stats")
    assert response.status_code == 200
    data = response.json()["data"]
    rows = Embedding.objects.all()
    assert data["count"] == rows.count()
    assert data["documents"] == len(DOCS) + 1
    assert data["totalTokens"] == sum(r.token_count for r in rows)
    assert data["models"] == [
        {
            "model": "all-MiniLM-L6-v2",
            "dimensions": 384,
            "count": rows.count(),
            "documents": len(DOCS) + 1,
            "tokens": data["totalTokens"],
        }
    ]
    assert data["dimensions"] == [384]
    assert data["vectorBytes"] == rows.count() * 384 * 4
    assert data["textBytes"] == sum(len(r.text.encode()) for r in rows)
    assert data["storageBytes"] == data["vectorBytes"] + data["textBytes"]
    empty = auth_client(make_user(email="bob@example.com")).get("/api/embeddings/stats").json()["data"]
    assert (empty["count"], empty["documents"], empty["totalTokens"], empty["models"]) == (0, 0, 0, [])
    assert empty["storageBytes"] == 0


def test_stats_count_bytes_not_characters(client_a):
    create(client_a, "Ünïcödé façade — naïve café.")
    data = client_a.get("/api/embeddings/stats").json()["data"]
    assert data["textBytes"] == len("Ünïcödé façade — naïve café.".encode())


def test_detail_shows_the_vector(client_a, corpus):
    response = client_a.get(f"/api/embeddings/{corpus['rust']}")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["id"] == corpus["rust"]
    assert data["text"] == DOCS["rust"]
    assert len(data["vector"]) == 384
    assert abs(sum(v * v for v in data["vector"]) - 1.0) < 1e-4


def test_detail_of_unknown_or_foreign_ids_is_404(client_a, auth_client, make_user, corpus):
    assert client_a.get("/api/embeddings/999999").status_code == 404
    assert client_a.get("/api/embeddings/abc").status_code == 404
    bob = auth_client(make_user(email="bob@example.com"))
    response = bob.get(f"/api/embeddings/{corpus['rust']}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# -- deletes -----------------------------------------------------------------------------------


def test_delete_one(client_a, corpus, user):
    version = VectorSpace.objects.get(user=user).version
    response = client_a.delete(f"/api/embeddings/{corpus['cats']}")
    assert response.status_code == 200
    assert response.json()["data"] == {"deleted": 1}
    assert not Embedding.objects.filter(pk=corpus["cats"]).exists()
    assert VectorSpace.objects.get(user=user).version == version + 1
    assert client_a.delete(f"/api/embeddings/{corpus['cats']}").status_code == 404
    assert client_a.get(f"/api/embeddings/{corpus['cats']}").status_code == 404


def test_delete_of_another_users_embedding_is_404_and_keeps_it(client_a, auth_client, make_user, corpus):
    bob = auth_client(make_user(email="bob@example.com"))
    response = bob.delete(f"/api/embeddings/{corpus['cats']}")
    assert response.status_code == 404
    assert Embedding.objects.filter(pk=corpus["cats"]).exists()


def test_bulk_delete_ignores_other_users_ids(client_a, auth_client, make_user, corpus):
    bob_user = make_user(email="bob@example.com")
    bob = auth_client(bob_user)
    bobs = create(bob, DOCS["cats"]).json()["data"]["ids"][0]
    response = client_a.post(
        "/api/embeddings/bulk-delete",
        {"ids": [corpus["cats"], corpus["rust"], bobs, 987654321, corpus["cats"]]},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["data"] == {"deleted": 2}
    assert Embedding.objects.filter(pk=bobs, user=bob_user).exists()
    assert not Embedding.objects.filter(pk__in=[corpus["cats"], corpus["rust"]]).exists()
    assert search(bob, DOCS["cats"]).json()["data"]["results"][0]["id"] == bobs
    # Nothing of the caller's among the ids: nothing deleted, and nothing revealed either.
    response = client_a.post("/api/embeddings/bulk-delete", {"ids": [bobs]}, format="json")
    assert response.status_code == 200
    assert response.json()["data"] == {"deleted": 0}
    assert Embedding.objects.filter(pk=bobs).exists()


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"ids": []},
        {"ids": "1,2"},
        {"ids": [1, "x"]},
        {"ids": [0]},
        {"ids": [None]},
        {"ids": list(range(1, 1002))},
        {"ids": [1, 2**63]},  # beyond a 64-bit key: SQLite cannot even bind it
        {"ids": [2**70]},
    ],
)
def test_bulk_delete_rejects_bad_input(client_a, payload):
    response = client_a.post("/api/embeddings/bulk-delete", payload, format="json")
    assert response.status_code == 400
    # Item errors are named by their path (`ids.1`), so `errors` is always {field: [messages]}.
    errors = response.json()["errors"]
    assert any(key == "ids" or key.startswith("ids.") for key in errors), errors
    assert all(isinstance(messages, list) and all(isinstance(m, str) for m in messages) for messages in errors.values())


def test_bulk_delete_needs_a_token(api):
    assert api.post("/api/embeddings/bulk-delete", {"ids": [1]}, format="json").status_code == 401


def test_delete_document(client_a, auth_client, make_user, corpus):
    doc = create(client_a, " ".join(f"Fact {i} about glaciers and ice sheets." for i in range(60)), chunkSize=32)
    document_id = doc.json()["data"]["documentId"]
    chunks = doc.json()["data"]["chunks"]
    bob = auth_client(make_user(email="bob@example.com"))
    assert bob.delete(f"/api/embeddings/documents/{document_id}").status_code == 404
    assert Embedding.objects.filter(document_id=document_id).count() == chunks

    response = client_a.delete(f"/api/embeddings/documents/{document_id}")
    assert response.status_code == 200
    assert response.json()["data"] == {"deleted": chunks, "documentId": document_id}
    assert not Embedding.objects.filter(document_id=document_id).exists()
    assert Embedding.objects.count() == len(DOCS)
    assert client_a.delete(f"/api/embeddings/documents/{document_id}").status_code == 404
    assert client_a.delete("/api/embeddings/documents/not-a-uuid").status_code == 404


def test_filtered_search_follows_writes(client_a, corpus):
    def ids(flt):
        response = search(client_a, "anything", threshold=-1, limit=100, filter=flt)
        return {r["id"] for r in response.json()["data"]["results"]}

    assert ids({"topic": "bread"}) == {corpus["bread"]}
    assert ids({"topic": "bread"}) == {corpus["bread"]}  # the same filter again, on the same vectors
    new = create(client_a, "Rye bread is dense.", metadata={"topic": "bread"}).json()["data"]["ids"][0]
    assert ids({"topic": "bread"}) == {corpus["bread"], new}
    client_a.delete(f"/api/embeddings/{corpus['bread']}")
    assert ids({"topic": "bread"}) == {new}
    assert ids({"topic": "cats"}) == {corpus["cats"]}
