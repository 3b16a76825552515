"""Quota period arithmetic: monthly boundaries on a cycle day, and the period a reset starts.

Pure functions of an account's dates; the services decide when to apply them."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime

from quotas.models import QuotaAccount


def add_month(moment: datetime, *, day: int | None = None) -> datetime:
    """The same time a month later, on `day` (default: the same day), or on the last day of a
    month too short for it."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    day = min(day or moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class Period:
    start: datetime
    reset_date: datetime
    cycle_day: int


def period_first(*, now: datetime) -> Period:
    """The period of an account opened at `now`: a month long, resetting on this day of the month."""
    return Period(now, add_month(now), now.day)


def period_next(*, account: QuotaAccount, now: datetime, force: bool) -> Period:
    """The period a reset at `now` starts.

    A due account keeps its monthly rhythm: the reset date moves on by whole months (on its cycle
    day) and the new period starts at the last boundary passed, even if the reset runs days late
    (beat was down). A forced reset of an account that is not due starts a full month from now."""
    if account.reset_date <= now:
        start, next_reset = account.reset_date, account.reset_date
        while next_reset <= now:
            start, next_reset = next_reset, add_month(next_reset, day=account.cycle_day)
        return Period(start, next_reset, account.cycle_day)
    if not force:
        return Period(account.period_start, account.reset_date, account.cycle_day)
    return period_first(now=now)
