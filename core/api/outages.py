"""Which exceptions mean "a backing store is down" rather than "a bug", and their 503 errors.

The exception handler and the API error middleware both map these, so an unreachable
PostgreSQL, Redis (cache) or broker answers a 503 with a machine code instead of a 500. The
connection is retried on the next request (Django's CONN_HEALTH_CHECKS, redis-py's and kombu's
pools reconnect), so service resumes without a restart once the store is back.
"""

from __future__ import annotations

from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from kombu.exceptions import OperationalError as BrokerOperationalError

from core.exceptions import CacheUnavailable, DatabaseUnavailable, QueueUnavailable, ServiceUnavailable

try:  # redis-py is installed with django-redis; the embedded default (local cache) never raises these
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    CACHE_ERRORS: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)
except ImportError:  # pragma: no cover
    CACHE_ERRORS = ()

DATABASE_ERRORS: tuple[type[Exception], ...] = (DatabaseOperationalError, DatabaseInterfaceError)
BROKER_ERRORS: tuple[type[Exception], ...] = (BrokerOperationalError, *CACHE_ERRORS)


def outage_error(exc: BaseException) -> ServiceUnavailable | None:
    """The 503 error for an exception that means a store is unreachable, else None."""
    if isinstance(exc, ServiceUnavailable):
        return exc
    if isinstance(exc, DATABASE_ERRORS):
        return DatabaseUnavailable()
    if CACHE_ERRORS and isinstance(exc, CACHE_ERRORS):
        return CacheUnavailable()
    if isinstance(exc, BrokerOperationalError):
        return QueueUnavailable()
    return None
