"""Fixtures shared by every test folder: API clients, users, and a clean cache per test."""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable, Iterator

import django_ratelimit.core
import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from ai_services.query_embeddings import query_embeddings_clear
from config.instance import instance_dir
from quotas.modalities import MODALITY_KEYS
from tests.ai_services.fake_openai import FakeOpenAI

_counter = itertools.count(1)
REAL_LIMITS = copy.deepcopy(django_settings.RATE_LIMITS)
PASSWORD = "Correct-Horse-42-battery"


GENEROUS_LIMITS = {name: {"rate": (10_000, 60), "burst": (10_000, 10)} for name in REAL_LIMITS}


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    """Every test gets empty counters, its own media folder, cheap password hashing and rate
    limits out of the way (tests about limits ask for `real_rate_limits`)."""
    cache.clear()
    query_embeddings_clear()  # per process, like the cache above: each test starts without it
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["tests.hashers.FastArgon2PasswordHasher"]
    settings.RATE_LIMITS = GENEROUS_LIMITS
    settings.WORKER_HEARTBEAT_DIR = tmp_path / "worker-heartbeats"  # embedded mode's heartbeat files
    # The test database's own instance files (a `make run` of this checkout has the main database's),
    # the folder a worker subprocess pointed at the test database derives too.
    settings.INSTANCE_DIR = instance_dir(django_settings.VAR_DIR, connection.settings_dict)
    yield
    cache.clear()


class RateClock:
    """The clock the rate-limit windows read. Windows are fixed and roll over at times that
    depend on the key, so a test that makes 21 requests could straddle a boundary and see its
    counter restart; pinning the clock makes the window boundaries the test's decision."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def start_window(self, identity: str, seconds: int) -> None:
        """Move to the first second of a fresh `seconds` window of `identity` (e.g. "ip:10.0.0.1"),
        so the test has the whole window before that counter rolls over."""
        self.now = float(django_ratelimit.core._get_window(identity, seconds) + 1)


@pytest.fixture
def rate_clock(monkeypatch) -> RateClock:
    clock = RateClock(float(int(time.time())))
    monkeypatch.setattr(django_ratelimit.core, "time", clock)
    # A counter's cache entry still expires in real time (its window plus this fudge): on a slow
    # machine a burst could outlive it and start counting from zero. Each test starts with an empty
    # cache, and a window the clock moves to has a key of its own, so nothing stale is counted.
    monkeypatch.setattr(django_ratelimit.core, "EXPIRATION_FUDGE", 3600)
    return clock


@pytest.fixture
def real_rate_limits(settings, rate_clock):
    """The real limits, on a pinned clock: a window rolls over only when the test moves the clock,
    so a burst of requests never straddles a boundary however slowly the machine runs."""
    settings.RATE_LIMITS = REAL_LIMITS
    return REAL_LIMITS


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def make_user(db) -> Callable[..., object]:
    from accounts.models import User

    def make(email: str | None = None, password: str = PASSWORD, **fields):
        email = email or f"user{next(_counter)}@example.com"
        fields.setdefault("name", "Test User")
        return User.objects.create_user(email=email, password=password, **fields)

    return make


@pytest.fixture
def user(make_user):
    return make_user(email="alice@example.com", name="Alice")


def login(client: APIClient, email: str, password: str = PASSWORD, **headers) -> dict:
    response = client.post("/api/auth/login", {"email": email, "password": password}, format="json", **headers)
    assert response.status_code == 200, response.content
    return response.json()["data"]


@pytest.fixture
def auth_client(user) -> Callable[..., APIClient]:
    """A client signed in as `user` (or as the given user) through the real login endpoint."""

    def make(as_user=None) -> APIClient:
        target = as_user or user
        client = APIClient()
        tokens = login(client, target.email)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['accessToken']}")
        client.tokens = tokens
        cache.clear()  # the login counted against the auth rate limit; tests start from zero
        return client

    return make


@pytest.fixture
def client_a(auth_client) -> APIClient:
    return auth_client()


@pytest.fixture
def staff(make_user) -> Client:
    """A browser session of a superuser, for the admin pages."""
    client = Client()
    client.force_login(make_user(email="ops@example.com", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def eager(settings) -> Iterator[None]:
    """Tasks run in the calling process (CELERY_TASK_ALWAYS_EAGER)."""
    from config.celery import app

    # Read first: Celery loads its configuration from the Django settings lazily, and loading it
    # after the change below would make "eager" the value to restore.
    previous = app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture
def local_settings(settings):
    """Every AI modality on the local (offline) engines, whatever the environment configures."""
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""
    settings.AI_PROVIDER = "local"
    settings.AI_PROVIDERS = dict.fromkeys(MODALITY_KEYS, "local")
    return settings


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def fake_openai(fake_openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The OpenAI-compatible test server (the one fake of the provider, at its HTTP boundary),
    reset for this test. Settings are the test's to point at it (`openai_settings` in
    tests/ai_services; tests/embeddings configures it for embeddings)."""
    fake_openai_server.reset()
    yield fake_openai_server
    fake_openai_server.reset()


@pytest.fixture
def upload_tmp(settings, tmp_path):
    """Uploads stream into this folder, so a test can see that none is left behind."""
    folder = tmp_path / "upload-tmp"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker) -> dict:
    """The OpenAPI document the docs pages load, as served."""
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()
