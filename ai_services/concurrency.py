"""How many AI calls one user may have running in the web processes at once.

A synchronous AI call (chat, text-to-speech, vision, a transcription answered in the request,
embeddings) holds a web thread for its whole length. Without a bound one user with a script can
occupy every thread and stall everyone else's light requests; with it, the extra calls get a
429 `ai_concurrency_limited` at once.

The running calls are the user's `processing` AI jobs without a queued upload (those are a
worker's). The check locks the user's quota account row before counting, in the transaction
that then reserves quota and creates the job, so concurrent requests of one user are counted one
after the other on any number of web processes, with no extra store: the database that holds
the jobs (a Redis semaphore would add a second thing to lose in an outage, and expiry to tune). A call
whose web process died stops counting once the reaper fails it (AI_JOB_STALE_SECONDS).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from accounts.models import User
from ai_services.models import AIJob
from core.compiled_queries import CompiledQuery, PerConnection, query_compile
from core.exceptions import RateLimited
from quotas.services import quota_account_lock


class ConcurrencyLimited(RateLimited):
    code = "ai_concurrency_limited"
    default_message = "Too many AI requests of yours are running at once. Wait for one to finish."

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"At most {limit} AI requests of yours may run at once. Wait for one to finish.",
            headers={"Retry-After": "2"},
            extra={"limit": limit},
        )


def ai_call_slot_take(*, user: User) -> None:
    """Raise ConcurrencyLimited if the user already has AI_USER_CONCURRENCY calls running.

    Must run inside the transaction that creates the new call's job (the lock is held until it
    commits, so the next request of the same user counts that job)."""
    limit = settings.AI_USER_CONCURRENCY
    if limit <= 0:
        return
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ai_call_slot_take must run inside the transaction that creates the job")
    quota_account_lock(user=user)
    since = timezone.now() - timedelta(seconds=settings.AI_JOB_STALE_SECONDS)
    if running_calls_count(user_id=user.pk, since=since) >= limit:
        raise ConcurrencyLimited(limit)


def running_calls(*, user_id: int, since: datetime, using: str = DEFAULT_DB_ALIAS) -> QuerySet[AIJob]:
    """The user's calls running in web processes, started since `since`."""
    return AIJob.objects.using(using).filter(
        user_id=user_id, status=AIJob.Status.PROCESSING, input_file="", started_at__gte=since
    )


# Sentinels the count is compiled with (core.compiled_queries): no real user id or start of a call.
_USER_SENTINEL = -7_355_608_114
_SINCE_SENTINEL = datetime(1901, 2, 3, 4, 5, 6, 789_012, tzinfo=UTC)
_STARTED_AT = AIJob._meta.get_field("started_at")
_compiled: PerConnection[CompiledQuery] = PerConnection()


def running_calls_count(*, user_id: int, since: datetime, using: str = DEFAULT_DB_ALIAS) -> int:
    """`running_calls(...).count()`, compiled once per connection: it runs before every AI call
    made in a request, and building and compiling the queryset cost ten times running it."""
    connection = connections[using]

    def build() -> CompiledQuery:
        # One row per user (this one), holding the count; no row when nothing runs.
        counted = running_calls(user_id=_USER_SENTINEL, since=_SINCE_SENTINEL, using=using)
        query = counted.order_by().values("user_id").annotate(running=Count("pk")).values("running").query
        since_value = _STARTED_AT.get_db_prep_value(_SINCE_SENTINEL, connection)
        return query_compile(query, connection, [_USER_SENTINEL, since_value])

    compiled = _compiled.get(connection, "count", build)
    rows = compiled.rows(connection, [user_id, _STARTED_AT.get_db_prep_value(since, connection)])
    return int(rows[0][0]) if rows else 0
