"""Quota accounting: reserve before work, settle to the real amount after, refund on failure.

How every service that costs units uses it (AI and video services follow exactly this):

    reservation = quota_reserve(user=user, service=Service.CHAT, units=units_for_chat())  # 429 if it won't fit
    reservation_attach(reservation=reservation, job_type="ai", job_id=job.id)  # once the job row exists
    try:
        result = do_the_work(...)
    except Exception:
        reservation_refund(reservation=reservation)  # the user pays nothing for failed work
        raise
    reservation_settle(
        reservation=reservation,
        units=units_for_speech(audio_seconds=result.duration),  # None keeps the reserved estimate
        usage={"tokens": 512, "audio_seconds": 183.4, "characters": 2100, "processing_ms": 1250},
    )

`usage` records what the work consumed; `/api/user/usage-stats` and the admin report it (tokens,
audio seconds, characters, average processing time per service). Pass the keys that apply to the
service and leave the others out; unknown keys are a programming error (ValueError).

`used` moves only through single conditional UPDATEs (`used + n <= limit` in the WHERE clause),
so any number of concurrent requests in any number of processes can never push it past `limit`.
Every change of `used` writes a signed ledger row (`UsageEntry`), so the ledger of a period always
sums to the account's `used`.

Accounts are opened on first use and reset lazily by `quota_account_ensure`, which runs where an
account must exist before it is read (authentication, sign-in, reservations, the X-Quota-*
headers), so a missed beat run never leaves a user locked out. Monthly resets:
`quota_reset_run` is shared by `manage.py reset_quotas` and the hourly beat task.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from core.api.envelope import counted
from core.compiled_queries import CompiledQuery, PerConnection, row_insert, rows_update, update_compile
from core.exceptions import InvalidInput, QuotaExceeded
from core.metrics import record_units_charged
from core.timestamps import iso_z
from quotas.modalities import Service
from quotas.models import QuotaAccount, Reservation, UsageEntry
from quotas.periods import period_first, period_next
from quotas.selectors import quota_account_get
from quotas.tracking import quota_account_changed, quota_account_forget, quota_account_remember

logger = logging.getLogger(__name__)

# Consumption figures a settling service may report, with the type each is stored as.
USAGE_FIELDS: dict[str, type] = {"tokens": int, "audio_seconds": float, "characters": int, "processing_ms": int}


def quota_account_create(*, user: AbstractBaseUser) -> QuotaAccount:
    period = period_first(now=timezone.now())
    account, _ = QuotaAccount.objects.get_or_create(
        user_id=user.pk,
        defaults={"period_start": period.start, "reset_date": period.reset_date, "cycle_day": period.cycle_day},
    )
    return account


def quota_account_ensure(*, user: AbstractBaseUser) -> QuotaAccount:
    """The user's account, opened on first use and moved to its current period once the reset
    date passed. Memoized on the user object for the request; with the account already loaded
    and not due it costs no query."""
    try:
        account = quota_account_get(user=user)
    except QuotaAccount.DoesNotExist:
        account = quota_account_create(user=user)
        quota_account_remember(user=user, account=account)
    if account.reset_date <= timezone.now():
        account = quota_reset(account=account, only_if_due=True)
        quota_account_remember(user=user, account=account)
    return account


def _reset_rows(account: QuotaAccount, *, force: bool, now: datetime) -> int:
    """Start the next period with one UPDATE that is conditional on the reset date this
    decision was made from still being in place, so a lazy reset, the beat task and the command
    running at the same time reset a period exactly once."""
    if not force and account.reset_date > now:
        return 0
    period = period_next(account=account, now=now, force=force)
    rows = QuotaAccount.objects.filter(pk=account.pk, reset_date=account.reset_date)
    changed = rows.update(
        used=0,
        period_start=period.start,
        reset_date=period.reset_date,
        cycle_day=period.cycle_day,
        updated_at=now,
    )
    if changed:
        quota_account_changed(user_id=account.user_id)
    return changed


def quota_reset(*, account: QuotaAccount, only_if_due: bool = False, now: datetime | None = None) -> QuotaAccount:
    """Start a new period for one account (with `only_if_due`, only if its reset date passed)."""
    now = now or timezone.now()
    _reset_rows(account, force=not only_if_due, now=now)
    account.refresh_from_db()
    return account


@dataclass(frozen=True)
class ResetItem:
    email: str
    used: int
    limit: int
    old_reset_date: datetime
    new_period_start: datetime
    new_reset_date: datetime
    applied: bool


@dataclass
class ResetRun:
    items: list[ResetItem] = field(default_factory=list)
    unknown_emails: list[str] = field(default_factory=list)
    without_account: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def reset_count(self) -> int:
        return sum(1 for item in self.items if item.applied)


def quota_reset_run(
    *, emails: Sequence[str] = (), everyone: bool = False, dry_run: bool = False, now: datetime | None = None
) -> ResetRun:
    """The monthly reset, shared by `manage.py reset_quotas` and the hourly beat task.

    By default it resets the accounts whose reset date has passed. `emails` resets the named
    users' accounts now (whether due or not: an operator asked for them), `everyone` every
    account now. `dry_run` reports what would happen and changes nothing."""
    if emails and everyone:
        raise InvalidInput("Name users or ask for every account, not both.")
    now = now or timezone.now()
    run = ResetRun(dry_run=dry_run)
    accounts = QuotaAccount.objects.select_related("user").order_by("pk")
    force = bool(emails) or everyone
    if emails:
        wanted = {email.strip().lower() for email in emails}
        accounts = accounts.filter(user__email__in=wanted)
        known = set(get_user_model().objects.filter(email__in=wanted).values_list("email", flat=True))
        found = set(accounts.values_list("user__email", flat=True))
        run.unknown_emails = sorted(wanted - known)
        # Users who never spent anything have no account yet: nothing to reset, they start a
        # period on first use.
        run.without_account = sorted(known - found)
    elif not everyone:
        accounts = accounts.filter(reset_date__lte=now)
    for account in accounts.iterator(chunk_size=500):
        period = period_next(account=account, now=now, force=force)
        applied = False if dry_run else bool(_reset_rows(account, force=force, now=now))
        run.items.append(
            ResetItem(
                email=account.user.email,
                used=account.used,
                limit=account.limit,
                old_reset_date=account.reset_date,
                new_period_start=period.start,
                new_reset_date=period.reset_date,
                applied=applied,
            )
        )
    if not dry_run and run.reset_count:
        logger.info("Reset %d quota accounts", run.reset_count)
    return run


def quota_limit_set(*, account: QuotaAccount, limit: int) -> QuotaAccount:
    """Change a user's monthly allowance (staff only, through the admin)."""
    if limit < 0:
        raise InvalidInput("The limit must not be negative.", errors={"limit": ["Must be 0 or more."]})
    QuotaAccount.objects.filter(pk=account.pk).update(limit=limit, updated_at=timezone.now())
    quota_account_changed(user_id=account.user_id)
    account.refresh_from_db()
    return account


def quota_reserve(
    *, user: AbstractBaseUser, service: Service | str, units: int, job_type: str = "", job_id: str = ""
) -> Reservation:
    """Hold `units` for a piece of work, or raise `QuotaExceeded` (429) if they don't fit."""
    if units < 0:
        raise ValueError("units must not be negative")
    if service not in Service.values:
        raise ValueError(f"unknown service {service!r}")
    account = quota_account_ensure(user=user)
    # No savepoint inside a caller's transaction (with its release, about 0.1 ms on every paid
    # call): nothing in the block raises but the database, and a database error there must fail
    # the caller's whole transaction anyway (a job never outlives its reservation). A refusal has
    # written nothing and is raised after the block, so the caller's transaction goes on.
    with transaction.atomic(savepoint=False):
        taken = _units_take(account, units)
        if taken:
            # Inserted through statements compiled once per connection: every paid call makes these.
            job = {"job_type": job_type, "job_id": str(job_id)}
            reservation = Reservation(
                user_id=user.pk, service=service, units=units, period_start=account.period_start, **job
            )
            row_insert(reservation)
            charge = UsageEntry(
                user_id=user.pk,
                service=service,
                kind=UsageEntry.Kind.CHARGE,
                units=units,
                reservation=reservation,
                period_start=account.period_start,
                **job,
            )
            row_insert(charge)
    quota_account_forget(user=user)
    if not taken:
        raise _exceeded(account, units)
    quota_account_changed(user_id=user.pk)
    record_units_charged(service=service, units=units)
    return reservation


# Sentinels the account's two hot UPDATEs are compiled with (core.compiled_queries): no real
# account id, period, moment or charge.
_ACCOUNT_SENTINEL = -7_355_608_116
_UNITS_SENTINELS = (-7_355_608_117, -7_355_608_118)
_PERIOD_SENTINEL = datetime(1901, 2, 3, 4, 5, 6, 789_013, tzinfo=UTC)
_NOW_SENTINEL = datetime(1901, 2, 3, 4, 5, 6, 789_014, tzinfo=UTC)
_DATETIME = QuotaAccount._meta.get_field("updated_at")
_account_updates: PerConnection[CompiledQuery] = PerConnection()


def _charge_compile(connection: BaseDatabaseWrapper) -> CompiledQuery:
    charge, limit_room = _UNITS_SENTINELS
    period, now = (_DATETIME.get_db_prep_value(value, connection) for value in (_PERIOD_SENTINEL, _NOW_SENTINEL))
    rows = QuotaAccount.objects.filter(
        pk=_ACCOUNT_SENTINEL, period_start=_PERIOD_SENTINEL, used__lte=F("limit") - limit_room
    )
    return update_compile(
        rows,
        connection,
        [_ACCOUNT_SENTINEL, period, limit_room, charge, now],
        used=F("used") + charge,
        updated_at=_NOW_SENTINEL,
    )


def _units_take(account: QuotaAccount, units: int) -> bool:
    """Add `units` to `used` if they fit under the limit, in the account's current period."""
    connection = transaction.get_connection()
    # Compiled once per connection: every paid call runs it.
    charge = _account_updates.get(connection, "charge", lambda: _charge_compile(connection))
    for _attempt in range(2):
        # The period is part of the condition: if a reset slipped in since the account was read,
        # the charge must be recorded against the new period, so read it and retry.
        period, now = (
            _DATETIME.get_db_prep_value(value, connection) for value in (account.period_start, timezone.now())
        )
        taken = charge.execute(connection, [account.pk, period, units, units, now])
        if taken:
            return True
        period_start = account.period_start
        account.refresh_from_db()
        if account.period_start == period_start:
            return False
    return False


def quota_account_lock(*, user: AbstractBaseUser) -> None:
    """Hold the user's quota account row until the current transaction ends: per-user checks
    that count rows (e.g. running AI calls) run one at a time across processes. Taken with a
    write, so SQLite takes its write lock at once (a read-then-write transaction there fails
    with "database is locked" instead of waiting)."""
    account = quota_account_ensure(user=user)
    connection = transaction.get_connection()
    # Compiled once per connection: every AI call made in a request takes this lock.
    lock = _account_updates.get(connection, "lock", lambda: _lock_compile(connection))
    lock.execute(connection, [account.pk])


def _lock_compile(connection: BaseDatabaseWrapper) -> CompiledQuery:
    rows = QuotaAccount.objects.filter(pk=_ACCOUNT_SENTINEL)
    return update_compile(rows, connection, [_ACCOUNT_SENTINEL], updated_at=F("updated_at"))


def _exceeded(account: QuotaAccount, units: int) -> QuotaExceeded:
    remaining = max(account.limit - account.used, 0)
    retry_after = max(1, int((account.reset_date - timezone.now()).total_seconds()))
    return QuotaExceeded(
        f"Quota exceeded: this request needs {counted(units, 'unit')} and {remaining} of your {account.limit} remain "
        f"until {account.reset_date:%Y-%m-%d}.",
        extra={
            "units_needed": units,
            "remaining": remaining,
            "used": account.used,
            "limit": account.limit,
            "reset_date": iso_z(account.reset_date),
        },
        headers={"Retry-After": str(retry_after)},
    )


def reservation_attach(*, reservation: Reservation, job_type: str, job_id: str) -> None:
    """Name the job a reservation paid for, once the job row exists."""
    Reservation.objects.filter(pk=reservation.pk).update(job_type=job_type, job_id=str(job_id))
    UsageEntry.objects.filter(reservation=reservation).update(job_type=job_type, job_id=str(job_id))
    reservation.job_type, reservation.job_id = job_type, str(job_id)


def _usage_clean(usage: dict[str, Any] | None) -> dict[str, int | float]:
    if not usage:
        return {}
    unknown = set(usage) - set(USAGE_FIELDS)
    if unknown:
        raise ValueError(f"unknown usage keys: {sorted(unknown)}; expected some of {sorted(USAGE_FIELDS)}")
    cleaned: dict[str, int | float] = {}
    for key, value in usage.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"usage[{key!r}] must be a non-negative number, not {value!r}")
        cleaned[key] = round(value) if USAGE_FIELDS[key] is int else float(value)
    return cleaned


def reservation_settle(
    *, reservation: Reservation, units: int | None = None, usage: dict[str, Any] | None = None
) -> Reservation:
    """Close a reservation at the real amount. The work is done, so an amount above the estimate
    is charged even past the limit (the next reservation will then be refused).

    `usage` (keyword-only, optional): what the work consumed, any of `tokens`, `audio_seconds`,
    `characters`, `processing_ms`; stored on the reservation for usage statistics."""
    usage_values = _usage_clean(usage)
    # No savepoint inside a caller's transaction (see `quota_reserve`): nothing here raises but
    # the database, a vanished row included.
    with transaction.atomic(savepoint=False):
        # Claim first with a conditional UPDATE: exactly one caller closes the reservation, and
        # the transaction starts by writing, so SQLite takes its write lock (and waits for it)
        # up front instead of failing to upgrade a read lock under concurrency.
        closed_at = timezone.now()
        claimed = rows_update(  # compiled once per connection: every paid call settles
            Reservation,
            where={"pk": reservation.pk, "status": Reservation.Status.RESERVED},
            values={"status": Reservation.Status.SETTLED, "closed_at": closed_at, **usage_values},
        )
        if not claimed:
            return Reservation.objects.get(pk=reservation.pk)
        # Claimed: until now the row was reserved, and a reserved row stays as it was created (only
        # the settle that claims it changes its units; `reservation_attach` names its job before
        # the work), so it is `reservation` with what was just written: not read again.
        current = _copy_of(reservation, status=Reservation.Status.SETTLED, closed_at=closed_at, **usage_values)
        final = current.units if units is None else max(units, 0)
        delta = final - current.units
        if delta:
            _account_adjust(current, delta, kind=UsageEntry.Kind.ADJUSTMENT)
            Reservation.objects.filter(pk=current.pk).update(units=final)
            current.units = final
    return current


def _copy_of(reservation: Reservation, **values: Any) -> Reservation:
    """A new instance of the stored row `reservation` with `values` set (the caller's stays as it was)."""
    names = [field.attname for field in Reservation._meta.concrete_fields]
    copy = Reservation.from_db(reservation._state.db, names, [getattr(reservation, name) for name in names])
    for name, value in values.items():
        setattr(copy, name, value)
    return copy


def reservation_refund(*, reservation: Reservation) -> Reservation:
    """Give back everything a reservation holds (the work failed). Idempotent."""
    with transaction.atomic():
        claimed = (
            Reservation.objects.filter(pk=reservation.pk)
            .exclude(status=Reservation.Status.REFUNDED)
            .update(status=Reservation.Status.REFUNDED, closed_at=timezone.now())
        )
        current = Reservation.objects.get(pk=reservation.pk)
        if claimed and current.units:
            _account_adjust(current, -current.units, kind=UsageEntry.Kind.REFUND)
    return current


def _account_adjust(reservation: Reservation, delta: int, *, kind: str) -> None:
    # Units of a period that has since been reset are neither given back into nor charged to the
    # new period: the condition on the period makes that part of the same UPDATE.
    rows = QuotaAccount.objects.filter(user_id=reservation.user_id, period_start=reservation.period_start)
    used = Greatest(F("used") + delta, 0) if delta < 0 else F("used") + delta
    rows.update(used=used, updated_at=timezone.now())
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
    record_units_charged(service=reservation.service, units=delta)  # negative deltas count as returned
    quota_account_changed(user_id=reservation.user_id)
