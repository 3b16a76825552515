"""Beat entry point for the monthly reset (scheduled hourly in settings: CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task

from quotas.services import quota_reset_run


@shared_task(name="quotas.reset_due")
def quotas_reset_due() -> int:
    """Reset the accounts whose reset date has passed; returns how many were reset.

    Safe to overlap with itself, the command and lazy resets: each account's reset is one UPDATE
    conditional on the reset date it was decided from."""
    return quota_reset_run().reset_count
