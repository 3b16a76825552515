"""POST /api/ai/chat with `useDocuments`: answers grounded in the user's own embeddings.

Chat goes to the fake OpenAI-compatible server (so the prompt it receives can be read); the
documents are embedded by the real local MiniLM engine, so retrieval is the real search."""

from __future__ import annotations

import json

import pytest

from ai_services.models import AIJob
from ai_services.services.grounding import NOTHING_FOUND, SOURCES_INTRO
from embeddings.models import Embedding
from quotas.models import Reservation
from quotas.selectors import quota_account_forget, quota_account_get

URL = "/api/ai/chat"

REFUNDS = "Refund policy: purchases can be returned within 30 days for a full refund with the original receipt."
PASTA = "To cook pasta, boil salted water, add the spaghetti and cook it for nine minutes until al dente."
MARS = "Olympus Mons on Mars is the tallest volcano in the solar system, about 22 kilometres high."


@pytest.fixture
def grounded_settings(openai_settings, tmp_path):
    """Chat on the fake server, embeddings on the local engine with this test's own vector cache."""
    from embeddings import services

    openai_settings.AI_PROVIDERS = {**openai_settings.AI_PROVIDERS, "embed": "local"}
    openai_settings.EMBEDDINGS_CACHE_DIR = str(tmp_path / "vector-cache")
    yield openai_settings
    services._caches.clear()


def used_units(user) -> int:
    quota_account_forget(user=user)
    return quota_account_get(user=user).used


def store(client, text, **extra) -> str:
    response = client.post("/api/embeddings/create", {"text": text, **extra}, format="json")
    assert response.status_code in (200, 201), response.content
    return response.json()["data"]["documentId"]


def last_prompt(fake_openai) -> list[dict]:
    return fake_openai.requests_to("/chat/completions")[-1].body["messages"]


@pytest.fixture
def library(grounded_settings, client_a) -> dict[str, str]:
    return {
        "refunds": store(client_a, REFUNDS, metadata={"source": "handbook"}),
        "pasta": store(client_a, PASTA, metadata={"source": "recipes"}),
        "mars": store(client_a, MARS, metadata={"source": "notes"}),
    }


def test_answer_is_grounded_in_the_closest_chunks_with_the_conversation(library, fake_openai, client_a, user):
    first = client_a.post(URL, {"message": "My name is Ada."}, format="json").json()["data"]
    assert first["citations"] == []  # a plain chat cites nothing
    before = used_units(user)

    response = client_a.post(
        URL,
        {
            "message": "How many days do I have to return a purchase for a refund?",
            "conversationId": first["conversationId"],
            "useDocuments": True,
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    citations = data["citations"]
    assert citations, "the refund policy is relevant"
    assert citations[0]["documentId"] == library["refunds"]
    assert [c["score"] for c in citations] == sorted((c["score"] for c in citations), reverse=True)
    for citation in citations:  # each citation is a stored row of this user, as stored
        row = Embedding.objects.get(pk=citation["embeddingId"])
        assert row.user_id == user.pk
        assert str(row.document_id) == citation["documentId"]
        assert row.text == citation["text"]
        assert citation["score"] >= 0.3

    # The prompt holds the conversation (memory), then the sources, then the message.
    messages = last_prompt(fake_openai)
    contents = [m["content"] for m in messages]
    assert "My name is Ada." in contents
    sources = messages[-2]
    assert sources["role"] == "system"
    assert sources["content"].startswith(SOURCES_INTRO)
    assert REFUNDS in sources["content"]
    assert contents.index("My name is Ada.") < len(messages) - 2
    assert messages[-1] == {"role": "user", "content": "How many days do I have to return a purchase for a refund?"}

    # Billed once: chat units plus the query's embedding units, one reservation, settled.
    job = AIJob.objects.get(id=data["jobId"])
    assert job.units_charged == 3
    assert job.input["use_documents"] is True
    assert job.output["citations"] == [c["embeddingId"] for c in citations]
    reservation = Reservation.objects.get(pk=job.reservation_id)
    assert (reservation.status, reservation.units) == (Reservation.Status.SETTLED, 3)
    assert used_units(user) == before + 3
    assert not AIJob.objects.filter(user=user, type="embedding", created_at__gt=job.created_at).exists()


def test_nothing_relevant_gives_no_citations_and_says_so(library, fake_openai, client_a):
    response = client_a.post(
        URL, {"message": "Who won the 1966 football world cup final?", "useDocuments": True}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["data"]["citations"] == []
    messages = last_prompt(fake_openai)
    assert messages[-2] == {"role": "system", "content": NOTHING_FOUND}
    assert not any(REFUNDS in m["content"] or PASTA in m["content"] for m in messages)


def test_document_ids_and_filter_narrow_the_sources(library, grounded_settings, fake_openai, client_a):
    grounded_settings.AI_GROUNDING_MIN_SCORE = -1.0  # every chunk of the chosen documents counts
    body = {"message": "How do I get a refund?", "useDocuments": True, "documentIds": [library["pasta"]]}
    cited = client_a.post(URL, body, format="json").json()["data"]["citations"]
    assert {c["documentId"] for c in cited} == {library["pasta"]}

    body = {"message": "How do I get a refund?", "useDocuments": True, "filter": {"source": "notes"}}
    cited = client_a.post(URL, body, format="json").json()["data"]["citations"]
    assert {c["documentId"] for c in cited} == {library["mars"]}


def test_another_users_documents_are_never_retrieved(grounded_settings, fake_openai, client_a, auth_client, make_user):
    other = make_user(email="bob@example.com")
    secret = "Bob's locker combination is 4711 and his safe code is 9921."
    their_document = store(auth_client(other), secret)
    store(client_a, PASTA)
    grounded_settings.AI_GROUNDING_MIN_SCORE = -1.0  # anything found at all would be cited

    for body in (
        {"message": secret, "useDocuments": True},
        {"message": secret, "useDocuments": True, "documentIds": [their_document]},
    ):
        response = client_a.post(URL, body, format="json")
        assert response.status_code == 200, response.content
        citations = response.json()["data"]["citations"]
        assert all(c["documentId"] != their_document for c in citations)
        assert "4711" not in json.dumps(last_prompt(fake_openai)[:-1])
    assert response.json()["data"]["citations"] == []  # only their document was asked for


def test_a_failed_answer_refunds_the_chat_and_the_query_units(library, fake_openai, client_a, user):
    before = used_units(user)
    fake_openai.fail_next("400")
    response = client_a.post(URL, {"message": "Refund window?", "useDocuments": True}, format="json")
    assert response.status_code >= 400
    job = AIJob.objects.filter(user=user, type="chat").latest("created_at")
    assert job.status == "failed"
    assert Reservation.objects.get(pk=job.reservation_id).status == Reservation.Status.REFUNDED
    assert used_units(user) == before


@pytest.mark.parametrize(
    "body",
    [
        {"filter": ["source"]},
        {"filter": {"source": {"nested": 1}}},
        {"filter": {"": 1}},
        {"documentIds": ["not-a-uuid"]},
        {"documentIds": "7d0f5a8e-3c21-4b9a-9e67-2f1c8d4b6a10"},
        {"useDocuments": "maybe"},
    ],
)
def test_bad_grounding_options_are_refused(grounded_settings, client_a, body):
    response = client_a.post(URL, {"message": "hi", "useDocuments": True, **body}, format="json")
    assert response.status_code == 400, response.content


@pytest.mark.django_db(transaction=True)
def test_the_stream_sends_citations_before_the_first_token(library, fake_openai, client_a):
    from tests.ai_services.test_chat_stream import read_stream

    fake_openai.state.reply = "Thirty days, with the receipt."
    response = client_a.post(
        URL, {"message": "What is the refund policy?", "useDocuments": True, "stream": True}, format="json"
    )
    assert response.status_code == 200
    events = read_stream(response)
    names = [name for name, _ in events]
    assert names[:2] == ["start", "citations"]
    assert names.index("citations") < names.index("delta")
    cited = events[1][1]["citations"]
    assert cited
    assert cited[0]["documentId"] == library["refunds"]
    done = dict(events)["done"]
    assert done["citations"] == cited


def test_a_video_moment_is_cited_with_its_video_and_time(grounded_settings, fake_openai, client_a):
    """Moments of the user's videos (captions, on-screen text) live in their embeddings with the
    video's job id and time; grounded answers cite them with both. Metadata that only looks like
    a moment stays a plain citation."""
    job_id = "7d0c2f4e-5a61-4b8e-9d3a-2f1e0c9b8a76"
    store(client_a, REFUNDS, metadata={"kind": "video_moment", "jobId": job_id, "start": 12.5, "end": 16.0})
    store(client_a, REFUNDS + " Again.", metadata={"kind": "video_moment", "jobId": "not-a-uuid", "start": 3})
    body = {"message": "How many days do I have to return a purchase for a refund?", "useDocuments": True}

    response = client_a.post(URL, body, format="json")

    assert response.status_code == 200, response.content
    by_text = {c["text"]: c for c in response.json()["data"]["citations"]}
    assert (by_text[REFUNDS]["jobId"], by_text[REFUNDS]["start"]) == (job_id, 12.5)
    assert (by_text[REFUNDS + " Again."]["jobId"], by_text[REFUNDS + " Again."]["start"]) == (None, None)
