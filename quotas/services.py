"""Quota accounting: reserve before work, settle to the real amount after, refund on failure.

`used` moves only through single conditional UPDATEs, so any number of concurrent requests in
any number of processes can never push it past `limit`.
"""

from __future__ import annotations

import calendar
import logging
from datetime import datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from config.api.exceptions import QuotaExceeded
from quotas.models import QuotaAccount, Reservation, UsageEntry
from quotas.pricing import Service
from quotas.selectors import quota_account_forget, quota_account_get

logger = logging.getLogger(__name__)


def add_month(moment: datetime) -> datetime:
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def quota_account_create(*, user) -> QuotaAccount:
    now = timezone.now()
    account, _ = QuotaAccount.objects.get_or_create(
        user_id=user.pk, defaults={"period_start": now, "reset_date": add_month(now)}
    )
    return account


def quota_reset(*, account: QuotaAccount, only_if_due: bool = False, now: datetime | None = None) -> QuotaAccount:
    """Start a new period. With `only_if_due`, the UPDATE is conditional on the old reset date
    still being in place, so concurrent lazy resets and the beat task reset a period once."""
    now = now or timezone.now()
    new_start = now
    if account.reset_date <= now:
        # Keep the user's monthly rhythm: move the reset date on by whole months.
        next_reset = account.reset_date
        while next_reset <= now:
            next_reset = add_month(next_reset)
    else:
        next_reset = add_month(now)
    rows = QuotaAccount.objects.filter(pk=account.pk)
    if only_if_due:
        rows = rows.filter(reset_date=account.reset_date, reset_date__lte=now)
    rows.update(used=0, period_start=new_start, reset_date=next_reset, updated_at=now)
    account.refresh_from_db()
    return account


def quota_reset_due(*, now: datetime | None = None, dry_run: bool = False) -> list[QuotaAccount]:
    """Reset every account whose reset date has passed; returns the accounts (reset or due)."""
    now = now or timezone.now()
    due = list(QuotaAccount.objects.select_related("user").filter(reset_date__lte=now))
    if not dry_run:
        for account in due:
            quota_reset(account=account, only_if_due=True, now=now)
    return due


def quota_limit_set(*, account: QuotaAccount, limit: int) -> QuotaAccount:
    QuotaAccount.objects.filter(pk=account.pk).update(limit=limit, updated_at=timezone.now())
    account.refresh_from_db()
    return account


def quota_reserve(*, user, service: Service | str, units: int, job_type: str = "", job_id: str = "") -> Reservation:
    """Hold `units` for a piece of work, or raise `QuotaExceeded` (429) if they don't fit."""
    if units < 0:
        raise ValueError("units must not be negative")
    account = quota_account_get(user=user)
    with transaction.atomic():
        taken = QuotaAccount.objects.filter(pk=account.pk, used__lte=F("limit") - units).update(
            used=F("used") + units, updated_at=timezone.now()
        )
        if not taken:
            account.refresh_from_db()
            quota_account_forget(user=user)
            retry_after = max(1, int((account.reset_date - timezone.now()).total_seconds()))
            raise QuotaExceeded(
                f"Quota exceeded: this request needs {units} units and {max(account.limit - account.used, 0)} "
                f"of your {account.limit} remain until {account.reset_date:%Y-%m-%d}.",
                extra={
                    "units_needed": units,
                    "used": account.used,
                    "limit": account.limit,
                    "reset_date": account.reset_date.isoformat().replace("+00:00", "Z"),
                },
                headers={"Retry-After": str(retry_after)},
            )
        reservation = Reservation.objects.create(
            user_id=user.pk,
            service=service,
            units=units,
            period_start=account.period_start,
            job_type=job_type,
            job_id=str(job_id),
        )
        UsageEntry.objects.create(
            user_id=user.pk,
            service=service,
            kind=UsageEntry.Kind.CHARGE,
            units=units,
            reservation=reservation,
            period_start=account.period_start,
            job_type=job_type,
            job_id=str(job_id),
        )
    quota_account_forget(user=user)
    return reservation


def reservation_attach(*, reservation: Reservation, job_type: str, job_id: str) -> None:
    """Name the job a reservation paid for, once the job row exists."""
    Reservation.objects.filter(pk=reservation.pk).update(job_type=job_type, job_id=str(job_id))
    UsageEntry.objects.filter(reservation=reservation).update(job_type=job_type, job_id=str(job_id))
    reservation.job_type, reservation.job_id = job_type, str(job_id)


def reservation_settle(*, reservation: Reservation, units: int | None = None) -> Reservation:
    """Close a reservation at the real amount. The work is done, so an amount above the estimate
    is charged even past the limit (the next reservation will then be refused)."""
    with transaction.atomic():
        current = Reservation.objects.select_for_update().get(pk=reservation.pk)
        if current.status != Reservation.Status.RESERVED:
            return current
        final = current.units if units is None else max(units, 0)
        delta = final - current.units
        if delta:
            _account_adjust(current, delta, kind=UsageEntry.Kind.ADJUSTMENT)
        current.units = final
        current.status = Reservation.Status.SETTLED
        current.closed_at = timezone.now()
        current.save(update_fields=["units", "status", "closed_at"])
    return current


def reservation_refund(*, reservation: Reservation) -> Reservation:
    """Give back everything a reservation holds (the work failed). Idempotent."""
    with transaction.atomic():
        current = Reservation.objects.select_for_update().get(pk=reservation.pk)
        if current.status == Reservation.Status.REFUNDED:
            return current
        if current.units:
            _account_adjust(current, -current.units, kind=UsageEntry.Kind.REFUND)
        current.status = Reservation.Status.REFUNDED
        current.closed_at = timezone.now()
        current.save(update_fields=["status", "closed_at"])
    return current


def _account_adjust(reservation: Reservation, delta: int, *, kind: str) -> None:
    account = QuotaAccount.objects.get(user_id=reservation.user_id)
    # Units of a period that has since been reset are not given back into the new period.
    if account.period_start == reservation.period_start:
        if delta < 0:
            QuotaAccount.objects.filter(pk=account.pk).update(used=_floor_zero(delta))
        else:
            QuotaAccount.objects.filter(pk=account.pk).update(used=F("used") + delta)
    UsageEntry.objects.create(
        user_id=reservation.user_id,
        service=reservation.service,
        kind=kind,
        units=delta,
        reservation=reservation,
        period_start=reservation.period_start,
        job_type=reservation.job_type,
        job_id=reservation.job_id,
    )


def _floor_zero(delta: int):
    from django.db.models.functions import Greatest

    return Greatest(F("used") + delta, 0)
