"""Several processes stay correct: the version in the database decides when a cached matrix is stale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ai_services.providers.local.minilm import get_embedder
from embeddings import services
from embeddings.models import VectorSpace
from embeddings.vector_index import VectorCache
from tests.celery_worker import _database_url

pytestmark = pytest.mark.usefixtures("embeddings_env")

MODEL = "all-MiniLM-L6-v2"


def vec(text: str) -> np.ndarray:
    return get_embedder().embed([text])[0]


def ids_found(user, cache: VectorCache, text: str) -> list[int]:
    hits = services.embedding_search_vectors(user=user, model=MODEL, queries=vec(text), threshold=-1, cache=cache)[0]
    return [hit.embedding["id"] for hit in hits]


@pytest.mark.django_db
def test_two_caches_see_each_others_writes(user, settings):
    first = VectorCache(settings.EMBEDDINGS_CACHE_DIR)
    second = VectorCache(settings.EMBEDDINGS_CACHE_DIR)
    a = services.embedding_create(user=user, text="Volcanoes erupt molten lava.").ids[0]
    assert ids_found(user, first, "lava") == [a]
    assert ids_found(user, second, "lava") == [a]

    b = services.embedding_create(user=user, text="Glaciers carve deep valleys.").ids[0]
    assert sorted(ids_found(user, first, "ice")) == sorted([a, b])
    assert sorted(ids_found(user, second, "ice")) == sorted([a, b])

    services.embedding_delete(user=user, embedding_id=a)
    space = VectorSpace.objects.get(user=user)
    assert space.version == 3
    for cache in (first, second):
        index = services.space_index_get(space=space, cache=cache)
        assert (index.version, list(index.ids)) == (3, [b])
        assert ids_found(user, cache, "lava") == [b]


@pytest.mark.django_db
def test_a_stale_cache_file_is_never_served(user, settings):
    cache = VectorCache(settings.EMBEDDINGS_CACHE_DIR)
    a = services.embedding_create(user=user, text="Volcanoes erupt molten lava.").ids[0]
    assert ids_found(user, cache, "lava") == [a]
    space = VectorSpace.objects.get(user=user)
    directory = cache.directory(services.space_cache_key(space=space))
    assert sorted(p.name for p in directory.glob("*.npy")) == ["v1.ids.npy", "v1.npy"]
    b = services.embedding_create(user=user, text="Glaciers carve deep valleys.").ids[0]
    restarted = VectorCache(settings.EMBEDDINGS_CACHE_DIR)  # a new process finds only the v1 files
    assert sorted(ids_found(user, restarted, "ice")) == sorted([a, b])
    assert sorted(p.name for p in directory.glob("*.npy")) == ["v2.ids.npy", "v2.npy"]
    # A later process maps the v2 files instead of reading the rows again.
    index = services.space_index_get(space=VectorSpace.objects.get(user=user), cache=VectorCache(directory.parent))
    assert (index.source, sorted(index.ids)) == ("disk", sorted([a, b]))


CHILD = r"""
import json, sys
import django
django.setup()
import numpy as np
from accounts.models import User
from embeddings import services
from embeddings.models import VectorSpace

for line in sys.stdin:
    command = json.loads(line)
    user = User.objects.get(pk=command["user"])
    if command["op"] == "delete":
        services.embedding_delete(user=user, embedding_id=command["id"])
    hits = services.embedding_search_vectors(
        user=user, model=command["model"], queries=np.asarray(command["query"], np.float32), threshold=-1
    )[0]
    index = services.space_index_get(space=VectorSpace.objects.get(user=user))
    reply = {"ids": [h.embedding["id"] for h in hits], "version": index.version, "source": index.source,
             "index_ids": sorted(int(i) for i in index.ids)}
    print(json.dumps(reply), flush=True)
"""


class Child:
    """Another web process: its own interpreter, database connection and vector cache."""

    def __init__(self, cache_dir: str) -> None:
        env = {**os.environ, "DATABASE_URL": _database_url(), "EMBEDDINGS_CACHE_DIR": cache_dir}
        env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            cwd=django_settings.BASE_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, **command) -> dict:
        self.proc.stdin.write(json.dumps({"model": MODEL, **command}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the child process died"
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_two_processes_stay_correct_after_writes_in_either(user, settings):
    child = Child(settings.EMBEDDINGS_CACHE_DIR)
    try:
        query = vec("hot lava").tolist()
        a = services.embedding_create(user=user, text="Volcanoes erupt molten lava.").ids[0]
        reply = child.ask(op="search", user=user.pk, query=query)
        assert (reply["ids"], reply["version"], reply["source"]) == ([a], 1, "loader")

        # A write here: the child still holds version 1 in memory and must not serve it.
        b = services.embedding_create(user=user, text="Lava flows glow red at night.").ids[0]
        assert sorted(ids_found(user, services.vector_cache(), "lava")) == sorted([a, b])  # writes the v2 files
        reply = child.ask(op="search", user=user.pk, query=query)
        assert sorted(reply["ids"]) == sorted([a, b])
        assert (reply["version"], reply["source"]) == (2, "disk")  # mapped the files this process wrote

        # A write in the child: this process holds version 2 and must reload.
        reply = child.ask(op="delete", user=user.pk, query=query, id=a)
        assert (reply["ids"], reply["version"], reply["index_ids"]) == ([b], 3, [b])
        index = services.space_index_get(space=VectorSpace.objects.get(user=user))
        assert (index.version, list(index.ids)) == (3, [b])
        assert ids_found(user, services.vector_cache(), "lava") == [b]
    finally:
        child.close()


@pytest.mark.django_db(transaction=True)
def test_account_deletion_removes_the_users_cache_files(user, make_user, auth_client, settings):
    from tests.conftest import PASSWORD

    other = make_user(email="bob@example.com")
    services.embedding_create(user=user, text="Volcanoes erupt molten lava.")
    services.embedding_create(user=other, text="Glaciers carve deep valleys.")
    cache = services.vector_cache()
    assert ids_found(user, cache, "lava")
    assert ids_found(other, cache, "ice")
    root = Path(settings.EMBEDDINGS_CACHE_DIR)
    mine = cache.directory(services.space_cache_key(space=VectorSpace.objects.get(user=user)))
    theirs = cache.directory(services.space_cache_key(space=VectorSpace.objects.get(user=other)))
    assert mine.is_dir()
    assert theirs.is_dir()

    response = auth_client(user).delete("/api/user/account", {"password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    assert not mine.exists()
    assert theirs.is_dir()
    assert list(theirs.glob("*.npy"))
    assert sorted(p.name for p in root.iterdir()) == [theirs.name]
    assert not VectorSpace.objects.filter(user_id=user.pk).exists()


@pytest.mark.django_db
def test_large_spaces_are_served_by_hnsw_with_the_same_answers(user, settings):
    settings.EMBEDDINGS_HNSW_THRESHOLD = 10
    facts = [
        f"Fact {i}: the {animal} lives in the {place}."
        for i, (animal, place) in enumerate(
            (a, p)
            for a in ("otter", "falcon", "lynx", "heron", "bison", "gecko", "walrus")
            for p in ("river", "desert", "tundra", "forest", "reef", "marsh", "canyon")
        )
    ]
    created = services.embedding_create(user=user, text="\n".join(facts), chunk_size=32, chunk_overlap=0)
    assert created.chunks >= 10
    space = VectorSpace.objects.get(user=user)
    cache = services.vector_cache()
    index = services.space_index_get(space=space, cache=cache)
    assert cache.wait_for_builds(timeout=60)
    index = services.space_index_get(space=space, cache=cache)
    assert index.has_hnsw
    query = vec("Which bird lives in the canyon?")
    exact = index.search(query, k=5, exact=True)[0]
    hits = services.embedding_search_vectors(user=user, model=MODEL, queries=query, limit=5, threshold=-1)[0]
    assert [hit.embedding["id"] for hit in hits] == exact.ids.tolist()
    assert [round(hit.score, 5) for hit in hits] == [round(float(s), 5) for s in exact.scores]


@pytest.mark.django_db
def test_a_space_made_anew_is_never_answered_from_the_old_ones_matrix(user, settings):
    # A search finds the matrix it holds for the user's space before reading the version. The new
    # space starts again at version 1, like that matrix: only the space id tells them apart.
    cache = VectorCache(settings.EMBEDDINGS_CACHE_DIR)
    a = services.embedding_create(user=user, text="Volcanoes erupt molten lava.").ids[0]
    assert ids_found(user, cache, "lava") == [a]
    VectorSpace.objects.filter(user=user).delete()
    assert ids_found(user, cache, "lava") == []
    b = services.embedding_create(user=user, text="Lava flows glow red at night.").ids[0]
    assert VectorSpace.objects.get(user=user).version == 1
    assert ids_found(user, cache, "lava") == [b]


@pytest.mark.django_db
def test_a_search_from_memory_runs_and_logs_two_statements(user, settings):
    settings.EMBEDDINGS_VECTOR_BACKEND = "numpy"
    cache = VectorCache(settings.EMBEDDINGS_CACHE_DIR)
    a = services.embedding_create(user=user, text="Volcanoes erupt molten lava.").ids[0]
    assert ids_found(user, cache, "lava") == [a]  # loads the matrix
    with CaptureQueriesContext(connection) as queries:
        assert ids_found(user, cache, "lava") == [a]
    # The hits' rows, then the version that confirms the matrix was current.
    assert [q["sql"].split(" FROM ")[1].split()[0].strip('"') for q in queries] == [
        "embeddings_embedding",
        "embeddings_vectorspace",
    ]
