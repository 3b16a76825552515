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

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from ai_services.models import AIJob
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
    running = AIJob.objects.filter(
        user_id=user.pk, status=AIJob.Status.PROCESSING, input_file="", started_at__gte=since
    ).count()
    if running >= limit:
        raise ConcurrencyLimited(limit)
