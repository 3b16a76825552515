"""The files of one backend instance, named after the database it serves.

Two checkouts (or a `make run` beside the test suite) on one machine must not share an embedded
broker, a beat schedule, worker heartbeats or vector caches: a worker of one would take the other's
jobs, look for them in its own database, and drop them. So these files live under
``var/instances/<key>/``, where the key names the database (its path for SQLite; engine, host,
port and name otherwise). Every process of one deployment computes the same key from the same
DATABASE_URL, and a different database always gets a different folder.

Plain Python: settings import it before Django is set up, and the test helpers reuse it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def instance_key(database: Mapping[str, Any]) -> str:
    """A short, readable and stable name for the database in `database` (a DATABASES entry)."""
    engine = str(database["ENGINE"]).rsplit(".", 1)[-1]
    name = str(database.get("NAME") or "")
    if engine == "sqlite3":
        identity = str(Path(name).resolve())
        label = Path(name).stem
    else:
        identity = f"{engine}://{database.get('HOST') or 'localhost'}:{database.get('PORT') or ''}/{name}"
        label = f"{engine}-{name}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', label)[:40]}-{digest}"


def instance_dir(var_dir: Path, database: Mapping[str, Any]) -> Path:
    return var_dir / "instances" / instance_key(database)


def embedded_broker_url(folder: Path) -> str:
    """kombu's SQLAlchemy transport on a SQLite file in the instance folder (no broker server needed)."""
    return f"sqla+sqlite:///{folder / 'celery-broker.sqlite3'}"
