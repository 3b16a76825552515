"""Reserve, settle, refund and reset: the ledger explains every unit and `used` never passes `limit`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from core.exceptions import InvalidInput, QuotaExceeded
from quotas import pricing
from quotas.modalities import Service
from quotas.models import QuotaAccount, Reservation, UsageEntry
from quotas.periods import add_month
from quotas.selectors import quota_account_forget, quota_summary
from quotas.services import (
    quota_account_ensure,
    quota_limit_set,
    quota_reserve,
    quota_reset,
    reservation_attach,
    reservation_refund,
    reservation_settle,
)
from quotas.tracking import quota_account_remember

pytestmark = pytest.mark.django_db


def ledger_sum(user, period_start=None) -> int:
    entries = UsageEntry.objects.filter(user=user)
    if period_start is not None:
        entries = entries.filter(period_start=period_start)
    return entries.aggregate(total=Sum("units"))["total"] or 0


def account_of(user) -> QuotaAccount:
    return QuotaAccount.objects.get(user=user)


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        (pricing.units_for_chat(), 2),
        (pricing.units_for_vision(), 3),
        (pricing.units_for_video(), 5),
        (pricing.units_for_speech(audio_seconds=180), 3),  # 3 min audio = 3 units
        (pricing.units_for_speech(audio_seconds=181), 4),  # a started minute counts
        (pricing.units_for_speech(audio_seconds=0.5), 1),
        (pricing.units_for_tts(characters=2000), 2),  # 2000 chars = 2 units
        (pricing.units_for_tts(characters=2001), 3),
        (pricing.units_for_embedding(tokens=2000), 2),  # 2000 tokens = 2 units
        (pricing.units_for_embedding(tokens=1), 1),
    ],
)
def test_price_table_matches_the_seed(units, expected):
    assert units == expected


def test_first_use_creates_an_account_with_the_default_monthly_limit(user):
    account = quota_account_ensure(user=user)
    assert account.limit == 100
    assert account.used == 0
    assert account.reset_date == add_month(account.period_start)


def test_reserve_charges_and_writes_a_ledger_row(user):
    reservation = quota_reserve(user=user, service=Service.CHAT, units=2, job_type="ai", job_id="j1")
    assert account_of(user).used == 2
    entry = UsageEntry.objects.get(reservation=reservation)
    assert (entry.kind, entry.units, entry.service, entry.job_id) == ("charge", 2, "chat", "j1")
    assert reservation.status == Reservation.Status.RESERVED


def test_reserve_that_does_not_fit_is_refused_and_changes_nothing(user):
    quota_reserve(user=user, service=Service.VIDEO, units=95)
    with pytest.raises(QuotaExceeded) as raised:
        quota_reserve(user=user, service=Service.VIDEO, units=6)
    error = raised.value
    assert error.status_code == 429
    assert error.code == "quota_exceeded"
    assert error.extra["units_needed"] == 6
    assert error.extra["remaining"] == 5
    assert error.extra["reset_date"] == account_of(user).reset_date.isoformat().replace("+00:00", "Z")
    assert int(error.headers["Retry-After"]) > 0
    assert account_of(user).used == 95
    assert Reservation.objects.filter(user=user).count() == 1
    # exactly up to the limit still fits
    quota_reserve(user=user, service=Service.VIDEO, units=5)
    assert account_of(user).used == 100


def test_settle_lower_gives_back_the_difference(user):
    reservation = quota_reserve(user=user, service=Service.SPEECH_TO_TEXT, units=10)
    settled = reservation_settle(reservation=reservation, units=3)
    assert settled.status == Reservation.Status.SETTLED
    assert settled.units == 3
    assert account_of(user).used == 3
    kinds = list(UsageEntry.objects.filter(reservation=reservation).order_by("id").values_list("kind", "units"))
    assert kinds == [("charge", 10), ("adjustment", -7)]
    assert ledger_sum(user) == 3


def test_settle_higher_charges_past_the_limit_then_refuses_more(user):
    quota_limit_set(account=quota_account_ensure(user=user), limit=10)
    reservation = quota_reserve(user=user, service=Service.SPEECH_TO_TEXT, units=8)
    reservation_settle(reservation=reservation, units=12)  # the audio was longer than estimated
    assert account_of(user).used == 12
    assert ledger_sum(user) == 12
    with pytest.raises(QuotaExceeded):
        quota_reserve(user=user, service=Service.CHAT, units=0 + 1)


def test_settle_records_usage_figures(user):
    reservation = quota_reserve(user=user, service=Service.CHAT, units=2)
    reservation_settle(reservation=reservation, usage={"tokens": 512, "processing_ms": 1250.4, "audio_seconds": None})
    stored = Reservation.objects.get(pk=reservation.pk)
    assert (stored.tokens, stored.processing_ms, stored.audio_seconds, stored.characters) == (512, 1250, None, None)


@pytest.mark.parametrize("usage", [{"tokenz": 1}, {"tokens": -1}, {"tokens": "many"}, {"characters": True}])
def test_settle_rejects_bad_usage_before_touching_anything(user, usage):
    reservation = quota_reserve(user=user, service=Service.CHAT, units=2)
    with pytest.raises(ValueError):
        reservation_settle(reservation=reservation, usage=usage)
    assert Reservation.objects.get(pk=reservation.pk).status == Reservation.Status.RESERVED


def test_settle_twice_changes_nothing_the_second_time(user):
    reservation = quota_reserve(user=user, service=Service.TEXT_TO_SPEECH, units=4)
    reservation_settle(reservation=reservation, units=2)
    reservation_settle(reservation=reservation, units=9)
    assert account_of(user).used == 2
    assert ledger_sum(user) == 2


def test_refund_gives_everything_back_once(user):
    quota_reserve(user=user, service=Service.CHAT, units=2)
    reservation = quota_reserve(user=user, service=Service.VISION, units=3)
    reservation_refund(reservation=reservation)
    reservation_refund(reservation=reservation)
    assert account_of(user).used == 2
    assert ledger_sum(user) == 2
    assert UsageEntry.objects.filter(reservation=reservation, kind="refund").count() == 1


def test_refund_of_a_settled_reservation_returns_the_settled_amount(user):
    reservation = quota_reserve(user=user, service=Service.EMBEDDING, units=5)
    reservation_settle(reservation=reservation, units=2)
    reservation_refund(reservation=reservation)
    assert account_of(user).used == 0
    assert ledger_sum(user) == 0


def test_attach_names_the_job_on_reservation_and_ledger(user):
    reservation = quota_reserve(user=user, service=Service.VIDEO, units=5)
    reservation_attach(reservation=reservation, job_type="video", job_id="42")
    assert Reservation.objects.get(pk=reservation.pk).job_id == "42"
    assert set(UsageEntry.objects.filter(reservation=reservation).values_list("job_type", "job_id")) == {
        ("video", "42")
    }


def test_refund_after_the_period_was_reset_does_not_credit_the_new_period(user):
    reservation = quota_reserve(user=user, service=Service.VIDEO, units=5)
    quota_reset(account=account_of(user))  # a new period starts (admin "reset now")
    quota_reserve(user=user, service=Service.CHAT, units=2)
    reservation_refund(reservation=reservation)
    account = account_of(user)
    assert account.used == 2
    assert ledger_sum(user, period_start=account.period_start) == 2


def test_a_reset_between_read_and_charge_charges_the_new_period(user):
    stale = quota_account_ensure(user=user)  # memoized on the user object, as during a request
    old_start = stale.period_start
    quota_reserve(user=user, service=Service.CHAT, units=2)
    quota_reset(account=QuotaAccount.objects.get(pk=stale.pk))
    quota_account_remember(user=user, account=stale)  # the request still holds the old period
    reservation = quota_reserve(user=user, service=Service.VISION, units=3)
    account = account_of(user)
    assert reservation.period_start == account.period_start != old_start
    assert account.used == 3
    assert ledger_sum(user, period_start=account.period_start) == 3


def test_lazy_reset_on_access_keeps_the_monthly_rhythm(user):
    quota_reserve(user=user, service=Service.VIDEO, units=5)
    boundary = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
    QuotaAccount.objects.filter(user=user).update(
        period_start=boundary - timedelta(days=31), reset_date=boundary, cycle_day=31
    )
    quota_account_forget(user=user)
    now = timezone.now()
    quota_account_ensure(user=user)  # as authentication does at the start of a request
    summary = quota_summary(user=user)
    assert summary["used"] == 0
    assert summary["period_start"] <= now < summary["reset_date"]
    # moved on by whole months from the old reset date: same time of day, and the period starts
    # at the last boundary passed, not at the moment of the lazy reset
    assert (summary["reset_date"].hour, summary["reset_date"].minute) == (9, 0)
    assert summary["reset_date"] == add_month(summary["period_start"], day=31)
    assert summary["period_start"].day in (28, 29, 30, 31)
    assert summary["reset_date"].day in (28, 29, 30, 31)


def test_periods_return_to_the_cycle_day_after_a_short_month(user):
    quota_reserve(user=user, service=Service.CHAT, units=1)
    opened = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
    QuotaAccount.objects.filter(user=user).update(period_start=opened, reset_date=add_month(opened), cycle_day=31)
    resets = []
    for _ in range(4):
        account = account_of(user)
        resets.append(account.reset_date.date().isoformat())
        quota_reset(account=account, only_if_due=True, now=account.reset_date)
    assert resets == ["2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31"]


def test_a_forced_reset_moves_the_cycle_day(user):
    quota_reserve(user=user, service=Service.CHAT, units=1)
    account = quota_reset(account=account_of(user), now=datetime(2026, 3, 30, 12, 0, tzinfo=UTC))
    assert (account.cycle_day, account.period_start.day) == (30, 30)
    assert account.reset_date.date().isoformat() == "2026-04-30"
    account = quota_reset(account=account, only_if_due=True, now=account.reset_date)
    assert account.reset_date.date().isoformat() == "2026-05-30"


def test_reset_only_if_due_leaves_an_account_in_its_period(user):
    quota_reserve(user=user, service=Service.CHAT, units=2)
    account = quota_reset(account=account_of(user), only_if_due=True)
    assert account.used == 2


def test_summary_warns_from_80_percent(user):
    quota_reserve(user=user, service=Service.VIDEO, units=79)
    assert quota_summary(user=user)["warning"] is False
    quota_reserve(user=user, service=Service.CHAT, units=1)
    summary = quota_summary(user=user)
    assert summary["warning"] is True
    assert (summary["percent_used"], summary["remaining"], summary["exhausted"]) == (80.0, 20, False)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 1, 31, tzinfo=UTC), datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2028, 1, 31, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC)),
        (datetime(2026, 12, 15, 8, 30, tzinfo=UTC), datetime(2027, 1, 15, 8, 30, tzinfo=UTC)),
    ],
)
def test_add_month(moment, expected):
    assert add_month(moment) == expected


def test_add_month_on_a_cycle_day():
    assert add_month(datetime(2026, 2, 28, tzinfo=UTC), day=31) == datetime(2026, 3, 31, tzinfo=UTC)
    assert add_month(datetime(2026, 3, 31, tzinfo=UTC), day=31) == datetime(2026, 4, 30, tzinfo=UTC)


def test_invalid_arguments_are_programming_errors(user):
    with pytest.raises(ValueError):
        quota_reserve(user=user, service="telepathy", units=1)
    with pytest.raises(ValueError):
        quota_reserve(user=user, service=Service.CHAT, units=-1)
    with pytest.raises(InvalidInput):
        quota_limit_set(account=quota_account_ensure(user=user), limit=-5)
