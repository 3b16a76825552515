"""What the AI request path keeps between requests, and when it must not: the SDK client, what a
provider class can do, and the SQLite connection settings every new connection gets."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ai_services.providers.base import ChatChunk, ChatResult
from ai_services.providers.capabilities import provider_supports
from ai_services.providers.local.provider import LocalProvider
from ai_services.providers.openai import OpenAIProvider
from quotas.modalities import CHAT, SPEAK

ROOT = Path(__file__).resolve().parents[2]


def test_the_openai_client_is_reused_until_its_settings_change(settings) -> None:
    settings.OPENAI_API_KEY = "sk-test-0000000000000000"
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    provider = OpenAIProvider()
    first = provider.client()
    assert provider.client() is first

    settings.OPENAI_BASE_URL = "http://127.0.0.1:10/v1"
    moved = provider.client()
    assert moved is not first
    assert str(moved.base_url).startswith("http://127.0.0.1:10/v1")

    settings.OPENAI_API_KEY = "sk-test-1111111111111111"
    assert provider.client() is not moved
    assert provider.client().api_key == "sk-test-1111111111111111"


class _ChattyLocal(LocalProvider):
    """The offline provider with a chat engine: a class of its own, so it supports chat."""

    def chat(
        self, *, messages: list[dict[str, Any]], model: str, temperature: float | None, max_tokens: int | None
    ) -> ChatResult:
        return ChatResult(content="hi", model=model)

    def chat_stream(
        self, *, messages: list[dict[str, Any]], model: str, temperature: float | None, max_tokens: int | None
    ) -> Iterator[ChatChunk]:
        yield ChatChunk(delta="hi")


def test_what_a_provider_supports_is_decided_per_class() -> None:
    # Asked in both orders, each class keeps its own answer.
    assert not provider_supports(LocalProvider(), CHAT)
    assert provider_supports(_ChattyLocal(), CHAT)
    assert not provider_supports(LocalProvider(), CHAT)
    assert provider_supports(LocalProvider(), SPEAK)
    assert provider_supports(_ChattyLocal(), SPEAK)


def test_every_new_sqlite_connection_is_in_wal_mode_with_normal_sync(tmp_path) -> None:
    # A process of its own on an SQLite file: the settings are read at start-up, and this suite
    # also runs on PostgreSQL.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    code = (
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('PRAGMA journal_mode'); print('journal', cursor.fetchone()[0])\n"
        "    cursor.execute('PRAGMA synchronous'); print('synchronous', cursor.fetchone()[0])\n"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    printed = dict(
        line.split(" ", 1) for line in done.stdout.splitlines() if line.startswith(("journal", "synchronous"))
    )
    assert printed["journal"] == "wal"
    assert printed["synchronous"] == "1"  # NORMAL: WAL commits without an fsync each
