"""Settings, read from the environment (see `.env.example` for every variable).

One settings package serves development, tests and production: `APP_ENVIRONMENT=production` turns
on the strict checks (a real `SECRET_KEY`, `DEBUG` off, secure cookies). With nothing configured the
backend runs embedded: SQLite, local files, an in-process cache and a Celery broker on SQLite.

Each module below holds one concern and imports what it needs from the modules before it. They are
read in a fixed order, so that with several bad variables the same check reports first whatever the
module split; `security` comes last and, in production, replaces base's CSRF origins with the https
origins of the allowed hosts. `DJANGO_SETTINGS_MODULE` stays `config.settings`.
"""

from __future__ import annotations

# Order matters (see above).
# isort: off
from config.settings.base import *  # noqa: F403
from config.settings.stores import *  # noqa: F403
from config.settings.auth import *  # noqa: F403
from config.settings.api import *  # noqa: F403
from config.settings.files import *  # noqa: F403
from config.settings.celery import *  # noqa: F403
from config.settings.ai import *  # noqa: F403
from config.settings.embeddings import *  # noqa: F403
from config.settings.users import *  # noqa: F403
from config.settings.video import *  # noqa: F403
from config.settings.observability import *  # noqa: F403
from config.settings.security import *  # noqa: F403
# isort: on
