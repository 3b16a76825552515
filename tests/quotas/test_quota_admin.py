"""The quota admin: accounts with filters and actions, the read-only ledger and reservations."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from quotas.modalities import Service
from quotas.models import QuotaAccount, Reservation, UsageEntry
from quotas.services import quota_account_ensure, quota_reserve

pytestmark = pytest.mark.django_db
ACCOUNTS = "/admin/quotas/quotaaccount/"
LEDGER = "/admin/quotas/usageentry/"


@pytest.fixture
def spenders(make_user):
    """Users at 10%, 80% and 100% of their limit."""
    made = {}
    for name, units in (("light", 10), ("heavy", 80), ("broke", 100)):
        user = make_user(email=f"{name}@example.com")
        quota_reserve(user=user, service=Service.VIDEO, units=units)
        made[name] = user
    return made


def page(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


def test_account_list_shows_usage_percent_and_reset_date(staff, spenders):
    html = page(staff.get(ACCOUNTS))
    for email in ("light@example.com", "heavy@example.com", "broke@example.com"):
        assert email in html
    assert "80%" in html
    assert "100%" in html
    assert f"?user__id__exact={spenders['heavy'].pk}" in html  # the ledger link


def test_account_list_query_count_does_not_grow(staff, make_user, spenders):
    with CaptureQueriesContext(connection) as few:
        page(staff.get(ACCOUNTS))
    for n in range(15):
        quota_account_ensure(user=make_user(email=f"more{n}@example.com"))
    with CaptureQueriesContext(connection) as many:
        html = page(staff.get(ACCOUNTS))
    assert "more14@example.com" in html
    assert len(many) == len(few)


@pytest.mark.parametrize(
    ("usage", "shown", "hidden"),
    [("warning", {"heavy", "broke"}, {"light"}), ("exhausted", {"broke"}, {"light", "heavy"})],
)
def test_usage_filters(staff, spenders, usage, shown, hidden):
    html = page(staff.get(ACCOUNTS, {"usage": usage}))
    assert all(f"{name}@example.com" in html for name in shown)
    assert not any(f"{name}@example.com" in html for name in hidden)


def test_reset_now_action(staff, spenders):
    broke = QuotaAccount.objects.get(user=spenders["broke"])
    response = staff.post(ACCOUNTS, {"action": "reset_now", "_selected_action": [broke.pk]}, follow=True)
    assert "Reset 1 quota account(s)." in page(response)
    broke.refresh_from_db()
    assert broke.used == 0
    assert broke.reset_date > timezone.now() + timedelta(days=27)
    assert QuotaAccount.objects.get(user=spenders["heavy"]).used == 80


def test_set_limit_action_asks_then_applies(staff, spenders):
    ids = [QuotaAccount.objects.get(user=spenders[name]).pk for name in ("light", "broke")]
    form = staff.post(ACCOUNTS, {"action": "set_limit", "_selected_action": ids})
    html = page(form)
    assert "Set the monthly limit" in html
    assert "broke@example.com: 100 / 100 used" in html

    bad = staff.post(ACCOUNTS, {"action": "set_limit", "_selected_action": ids, "apply": "1", "limit": "-3"})
    assert "errorlist" in page(bad)
    assert QuotaAccount.objects.get(pk=ids[0]).limit == 100

    done = staff.post(
        ACCOUNTS, {"action": "set_limit", "_selected_action": ids, "apply": "1", "limit": "250"}, follow=True
    )
    assert "Set the limit of 2 account(s) to 250." in page(done)
    assert set(QuotaAccount.objects.filter(pk__in=ids).values_list("limit", "used")) == {(250, 10), (250, 100)}
    assert QuotaAccount.objects.get(user=spenders["heavy"]).limit == 100


def test_change_form_sets_the_limit_through_the_service(staff, spenders):
    account = QuotaAccount.objects.get(user=spenders["heavy"])
    url = f"{ACCOUNTS}{account.pk}/change/"
    assert "Usage ledger" in page(staff.get(url))
    response = staff.post(url, {"limit": "500"}, follow=True)
    assert response.status_code == 200
    account.refresh_from_db()
    assert (account.limit, account.used) == (500, 80)


def test_accounts_are_not_added_or_deleted_by_hand(staff, spenders):
    assert staff.get(f"{ACCOUNTS}add/").status_code == 403
    account = QuotaAccount.objects.get(user=spenders["light"])
    assert staff.get(f"{ACCOUNTS}{account.pk}/delete/").status_code == 403


def test_ledger_filters_by_user_service_and_date(staff, spenders):
    heavy = spenders["heavy"]
    quota_reserve(user=heavy, service=Service.CHAT, units=2)
    old = UsageEntry.objects.filter(user=heavy, service=Service.VIDEO).get()
    UsageEntry.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))

    def listed(**params) -> set[tuple[str, str]]:
        response = staff.get(LEDGER, params)
        assert response.status_code == 200
        return {(entry.user.email, entry.service) for entry in response.context["cl"].result_list}

    assert listed(user__id__exact=heavy.pk) == {("heavy@example.com", "video"), ("heavy@example.com", "chat")}
    assert listed(service__exact="chat") == {("heavy@example.com", "chat")}
    since = (timezone.now() - timedelta(days=7)).isoformat()
    assert listed(user__id__exact=heavy.pk, created_at__gte=since) == {("heavy@example.com", "chat")}
    assert ("broke@example.com", "video") in listed(created_at__gte=since)


def test_ledger_query_count_does_not_grow(staff, spenders):
    with CaptureQueriesContext(connection) as few:
        page(staff.get(LEDGER))
    for _ in range(15):
        quota_reserve(user=spenders["light"], service=Service.CHAT, units=1)
    with CaptureQueriesContext(connection) as many:
        page(staff.get(LEDGER))
    assert len(many) == len(few)


def test_ledger_is_read_only(staff, spenders):
    entry = UsageEntry.objects.first()
    assert staff.get(f"{LEDGER}add/").status_code == 403
    assert staff.get(f"{LEDGER}{entry.pk}/delete/").status_code == 403
    html = page(staff.get(f"{LEDGER}{entry.pk}/change/"))
    assert 'name="units"' not in html


def test_refund_action_on_stuck_reservations(staff, spenders):
    light = spenders["light"]
    reservation = Reservation.objects.get(user=light)
    response = staff.post(
        "/admin/quotas/reservation/", {"action": "refund", "_selected_action": [reservation.pk]}, follow=True
    )
    assert "Refunded 1 reservation(s)." in page(response)
    assert QuotaAccount.objects.get(user=light).used == 0
    assert UsageEntry.objects.filter(user=light, kind="refund").count() == 1
