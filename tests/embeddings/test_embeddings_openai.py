"""Embeddings through the `openai` provider, against a local OpenAI-compatible server."""

from __future__ import annotations

import numpy as np
import pytest

from ai_services.models import AIJob
from embeddings.models import Embedding, VectorSpace
from embeddings.vector_index import from_bytes
from quotas.selectors import quota_account_get

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("embeddings_env")]

TEXTS = [
    "Invoices are due thirty days after delivery.",
    "The office is closed on public holidays.",
    "Refunds are paid to the original card within a week.",
]


def used_units(user) -> int:
    if hasattr(user, "_quota_account_cache"):
        del user._quota_account_cache
    return quota_account_get(user=user).used


def test_create_and_search_through_the_openai_provider(client_a, user, fake_openai):
    ids = []
    for text in TEXTS:
        response = client_a.post(
            "/api/embeddings/create", {"text": text, "metadata": {"kind": "policy"}}, format="json"
        )
        assert response.status_code == 201, response.content
        data = response.json()["data"]
        assert data["model"] == "text-embedding-3-small"
        assert data["dimensions"] == 32
        assert data["tokens"] == len(text.split())  # the server's reported usage is what counts
        ids.append(data["ids"][0])

    calls = fake_openai.requests_to("/embeddings")
    assert len(calls) == 3
    assert calls[0].body["model"] == "text-embedding-3-small"
    assert calls[0].body["input"] == [TEXTS[0]]
    assert calls[0].headers["authorization"] == "Bearer sk-test-embeddings-0000"

    row = Embedding.objects.get(pk=ids[1])
    assert (row.model, row.dimensions) == ("text-embedding-3-small", 32)
    assert np.linalg.norm(from_bytes(bytes(row.vector), 32)) == pytest.approx(1.0, abs=1e-6)
    assert VectorSpace.objects.get(user=user).dimensions == 32

    response = client_a.post("/api/embeddings/search", {"query": TEXTS[1], "threshold": 0.99}, format="json")
    assert response.status_code == 200, response.content
    results = response.json()["data"]["results"]
    assert [r["id"] for r in results] == [ids[1]]
    assert results[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert response.json()["data"]["dimensions"] == 32

    jobs = AIJob.objects.filter(user=user, type=AIJob.Type.EMBEDDING)
    assert jobs.count() == 4
    assert set(jobs.values_list("status", flat=True)) == {AIJob.Status.COMPLETED}
    assert set(jobs.values_list("provider", flat=True)) == {"openai"}
    assert used_units(user) == 4


def test_vectors_of_the_local_model_are_not_searched_with_openai_queries(client_a, settings, fake_openai):
    settings.AI_PROVIDERS = {**settings.AI_PROVIDERS, "embed": "local"}
    local_id = client_a.post("/api/embeddings/create", {"text": TEXTS[0]}, format="json").json()["data"]["ids"][0]
    settings.AI_PROVIDERS = {**settings.AI_PROVIDERS, "embed": "openai"}
    openai_id = client_a.post("/api/embeddings/create", {"text": TEXTS[0]}, format="json").json()["data"]["ids"][0]
    results = client_a.post("/api/embeddings/search", {"query": TEXTS[0], "threshold": -1}, format="json").json()[
        "data"
    ]["results"]
    assert [r["id"] for r in results] == [openai_id]
    settings.AI_PROVIDERS = {**settings.AI_PROVIDERS, "embed": "local"}
    results = client_a.post("/api/embeddings/search", {"query": TEXTS[0], "threshold": -1}, format="json").json()[
        "data"
    ]["results"]
    assert [r["id"] for r in results] == [local_id]
    stats = client_a.get("/api/embeddings/stats").json()["data"]
    assert {(m["model"], m["dimensions"]) for m in stats["models"]} == {
        ("all-MiniLM-L6-v2", 384),
        ("text-embedding-3-small", 32),
    }


def test_a_larger_chunk_size_is_allowed_for_openai_models(client_a, fake_openai):
    text = " ".join(f"Clause {i} sets out the obligations of the supplier in detail." for i in range(200))
    response = client_a.post("/api/embeddings/create", {"text": text, "chunkSize": 512}, format="json")
    assert response.status_code == 201
    assert 2 <= response.json()["data"]["chunks"] <= 6


@pytest.mark.parametrize(("mode", "status", "code"), [("500", 502, "provider_error"), ("wrong_shape", 502, None)])
def test_provider_error_is_reported_and_refunded(client_a, user, fake_openai, mode, status, code):
    fake_openai.fail_next(mode, mode)  # the first try and the one retry
    response = client_a.post("/api/embeddings/create", {"text": TEXTS[0]}, format="json")
    assert response.status_code == status, response.content
    assert response.json()["success"] is False
    if code:
        assert response.json()["code"] == code
    assert not Embedding.objects.exists()
    assert used_units(user) == 0
    job = AIJob.objects.get(user=user, type=AIJob.Type.EMBEDDING)
    assert job.status == AIJob.Status.FAILED


def test_search_provider_error_is_refunded(client_a, user, fake_openai):
    client_a.post("/api/embeddings/create", {"text": TEXTS[0]}, format="json")
    before = used_units(user)
    fake_openai.fail_next("503", "503")
    response = client_a.post("/api/embeddings/search", {"query": TEXTS[0]}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "provider_unavailable"
    assert used_units(user) == before


def test_provider_down_is_503_and_refunded(client_a, user, settings, fake_openai, closed_port):
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{closed_port}/v1"
    response = client_a.post("/api/embeddings/create", {"text": TEXTS[0]}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "provider_unavailable"
    assert not Embedding.objects.exists()
    assert used_units(user) == 0
    response = client_a.post("/api/embeddings/search", {"query": TEXTS[0]}, format="json")
    assert response.status_code == 503
    assert used_units(user) == 0


def test_openai_provider_without_configuration_is_503(client_a, settings, fake_openai):
    settings.OPENAI_BASE_URL = ""
    settings.OPENAI_API_KEY = ""
    response = client_a.post("/api/embeddings/create", {"text": TEXTS[0]}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "provider_not_configured"


def test_a_repeated_search_query_is_embedded_once_and_charged_each_time(client_a, user, settings, fake_openai):
    for text in TEXTS:
        assert client_a.post("/api/embeddings/create", {"text": text}, format="json").status_code == 201
    created = len(fake_openai.requests_to("/embeddings"))
    used = used_units(user)

    answers = [
        client_a.post("/api/embeddings/search", {"query": TEXTS[2], "threshold": -1}, format="json") for _ in range(3)
    ]
    assert all(answer.status_code == 200 for answer in answers)
    assert len({str(answer.json()["data"]["results"]) for answer in answers}) == 1
    assert answers[0].json()["data"]["results"][0]["text"] == TEXTS[2]
    assert len(fake_openai.requests_to("/embeddings")) == created + 1  # embedded once, reused twice
    assert used_units(user) == used + 3  # the price of a search does not depend on the cache
    searches = AIJob.objects.filter(user=user, type=AIJob.Type.EMBEDDING).order_by("created_at")[3:]
    assert [job.output["reused"] for job in searches] == [False, True, True]

    # Another text, or another model, is a new embedding.
    client_a.post("/api/embeddings/search", {"query": TEXTS[1]}, format="json")
    client_a.post("/api/embeddings/search", {"query": TEXTS[2], "model": "text-embedding-3-large"}, format="json")
    assert len(fake_openai.requests_to("/embeddings")) == created + 3

    settings.EMBEDDINGS_QUERY_CACHE_SIZE = 0  # off: every search calls the provider
    client_a.post("/api/embeddings/search", {"query": TEXTS[2]}, format="json")
    assert len(fake_openai.requests_to("/embeddings")) == created + 4


def test_the_query_cache_keeps_the_most_recent_queries(client_a, settings, fake_openai):
    settings.EMBEDDINGS_QUERY_CACHE_SIZE = 2
    client_a.post("/api/embeddings/create", {"text": TEXTS[0]}, format="json")
    start = len(fake_openai.requests_to("/embeddings"))
    for query in ["first query", "second query", "first query", "third query", "first query", "second query"]:
        assert client_a.post("/api/embeddings/search", {"query": query}, format="json").status_code == 200
    # first, second: 2 calls; first: hit; third evicts second; first: hit; second: a call again.
    assert len(fake_openai.requests_to("/embeddings")) == start + 4
