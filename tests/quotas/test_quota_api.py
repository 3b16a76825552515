"""GET /api/user/quota, GET /api/user/usage-stats, the X-Quota-* headers and 429 quota_exceeded."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import path
from django.utils import timezone
from rest_framework.views import APIView

import config.urls
from core import ratelimit
from core.api.envelope import ok
from quotas.modalities import Service
from quotas.models import QuotaAccount, Reservation, UsageEntry
from quotas.selectors import quota_summary
from quotas.services import (
    quota_account_ensure,
    quota_limit_set,
    quota_reserve,
    reservation_refund,
    reservation_settle,
)

pytestmark = pytest.mark.django_db


class ChatProbe(APIView):
    """Stands in for an AI endpoint: reserve, do the work, settle to the real amount."""

    rate_category = ratelimit.AI

    def post(self, request):
        reservation = quota_reserve(user=request.user, service=Service.CHAT, units=5)
        quota_summary(user=request.user)  # read (and memoized) mid-request, e.g. for the response
        # Settled through a freshly loaded row, as a worker would: the headers must still follow.
        reservation_settle(reservation=Reservation.objects.get(pk=reservation.pk), units=2, usage={"tokens": 40})
        return ok({"reservation": str(reservation.pk)})


urlpatterns = [path("api/test-quota/chat", ChatProbe.as_view()), *config.urls.urlpatterns]


def test_quota_shape_for_a_new_user(client_a):
    response = client_a.get("/api/user/quota")
    assert response.status_code == 200
    data = response.json()["data"]
    assert {k: data[k] for k in ("limit", "used", "remaining", "percentUsed", "warning", "exhausted")} == {
        "limit": 100,
        "used": 0,
        "remaining": 100,
        "percentUsed": 0.0,
        "warning": False,
        "exhausted": False,
    }
    start = datetime.fromisoformat(data["periodStart"])
    reset = datetime.fromisoformat(data["resetDate"])
    assert 28 <= (reset - start).days <= 31
    assert data["resetDate"].endswith("Z")


@pytest.mark.parametrize(("used", "warning"), [(79, False), (80, True), (100, True)])
def test_warning_flag_from_80_percent(client_a, user, used, warning):
    quota_reserve(user=user, service=Service.VIDEO, units=used)
    data = client_a.get("/api/user/quota").json()["data"]
    assert (data["used"], data["warning"], data["percentUsed"]) == (used, warning, float(used))
    assert data["exhausted"] is (used == 100)


def test_quota_needs_a_token(api):
    assert api.get("/api/user/quota").status_code == 401
    assert api.get("/api/user/usage-stats").status_code == 401


def test_every_authenticated_api_response_carries_quota_headers(client_a, user):
    quota_reserve(user=user, service=Service.VISION, units=3)
    reset = QuotaAccount.objects.get(user=user).reset_date.isoformat().replace("+00:00", "Z")
    for url in ("/api/auth/me", "/api/user/profile", "/api/user/quota", "/api/auth/sessions"):
        response = client_a.get(url)
        assert (response["X-Quota-Limit"], response["X-Quota-Used"], response["X-Quota-Reset"]) == ("100", "3", reset)
    # errors of authenticated requests carry them too
    assert client_a.get("/api/user/avatar")["X-Quota-Used"] == "3"


def test_unauthenticated_responses_have_no_quota_headers(api, user):
    response = api.post("/api/auth/login", {"email": user.email, "password": "wrong-password"}, format="json")
    assert "X-Quota-Limit" not in response
    assert "X-Quota-Limit" not in api.get("/api/user/quota")


def test_overdue_account_is_reset_on_access(client_a, user):
    quota_reserve(user=user, service=Service.VIDEO, units=90)
    QuotaAccount.objects.filter(user=user).update(reset_date=timezone.now() - timedelta(minutes=1))
    response = client_a.get("/api/user/quota")
    data = response.json()["data"]
    assert (data["used"], data["warning"]) == (0, False)
    assert datetime.fromisoformat(data["resetDate"]) > timezone.now()
    assert response["X-Quota-Used"] == "0"


@pytest.mark.urls(__name__)
def test_headers_follow_a_settle_made_in_the_request(client_a):
    response = client_a.post("/api/test-quota/chat")
    assert response.status_code == 200
    assert response["X-Quota-Used"] == "2"


@pytest.mark.urls(__name__)
def test_exhausted_quota_is_429_with_units_needed_and_reset_date(client_a, user):
    quota_limit_set(account=quota_account_ensure(user=user), limit=7)
    assert client_a.post("/api/test-quota/chat").status_code == 200  # reserves 5 of 7, settles at 2
    assert client_a.post("/api/test-quota/chat").status_code == 200  # 2 + 5 = 7 still fits; settles at 4
    refused = client_a.post("/api/test-quota/chat")
    assert refused.status_code == 429
    body = refused.json()
    account = QuotaAccount.objects.get(user=user)
    assert body["success"] is False
    assert body["code"] == "quota_exceeded"
    assert body["unitsNeeded"] == 5
    assert body["remaining"] == 3  # 4 + 5 > 7
    assert body["resetDate"] == account.reset_date.isoformat().replace("+00:00", "Z")
    assert 0 < int(refused["Retry-After"]) <= 31 * 86400
    assert refused["X-Quota-Used"] == str(account.used) == "4"
    assert Reservation.objects.filter(user=user).count() == 2


def make_usage(user, n: int) -> None:
    """`n` requests of every kind: settled chats with tokens and timing, speech, a refund."""
    for i in range(n):
        chat = quota_reserve(user=user, service=Service.CHAT, units=2)
        reservation_settle(reservation=chat, usage={"tokens": 100 + i, "processing_ms": 1000 + 100 * (i % 3)})
        speech = quota_reserve(user=user, service=Service.SPEECH_TO_TEXT, units=5)
        reservation_settle(reservation=speech, units=3, usage={"audio_seconds": 150.5, "processing_ms": 4000})
        failed = quota_reserve(user=user, service=Service.VISION, units=3)
        reservation_refund(reservation=failed)


def test_usage_stats_totals_per_service(client_a, user):
    quota_limit_set(account=quota_account_ensure(user=user), limit=1000)
    make_usage(user, 3)
    tts = quota_reserve(user=user, service=Service.TEXT_TO_SPEECH, units=3)
    reservation_settle(reservation=tts, usage={"characters": 2500})

    response = client_a.get("/api/user/usage-stats")
    assert response.status_code == 200
    data = response.json()["data"]
    services = data["services"]
    assert set(services) == {"chat", "whisper", "tts", "vision", "video", "embedding"}
    assert services["chat"] == {
        "label": "Chat",
        "requests": 3,
        "refunded": 0,
        "units": 6,
        "tokens": 100 + 101 + 102,
        "audioSeconds": 0.0,
        "characters": 0,
        "averageProcessingMs": 1100,
    }
    assert services["whisper"]["units"] == 9
    assert services["whisper"]["audioSeconds"] == 451.5
    assert services["whisper"]["averageProcessingMs"] == 4000
    assert (services["vision"]["requests"], services["vision"]["refunded"], services["vision"]["units"]) == (0, 3, 0)
    assert services["tts"]["characters"] == 2500
    assert services["video"] == {
        "label": "Video processing",
        "requests": 0,
        "refunded": 0,
        "units": 0,
        "tokens": 0,
        "audioSeconds": 0.0,
        "characters": 0,
        "averageProcessingMs": None,
    }
    assert data["totals"]["units"] == 6 + 9 + 3 == data["period"]["used"]
    assert data["totals"]["requests"] == 3 + 3 + 1
    period = data["period"]
    assert (period["limit"], period["remaining"], period["warning"]) == (1000, 982, False)
    assert period["daysElapsed"] == 0
    assert period["daysInPeriod"] in (28, 29, 30, 31)
    assert period["daysRemaining"] == period["daysInPeriod"]


def test_usage_stats_daily_series_in_the_users_time_zone(client_a, user):
    user.timezone = "America/New_York"
    user.save(update_fields=["timezone"])
    zone = ZoneInfo("America/New_York")
    today = timezone.now().astimezone(zone).date()
    make_usage(user, 1)
    # 23:30 in New York two days ago is already the next day in UTC.
    late_evening = datetime.combine(today - timedelta(days=2), time(23, 30), tzinfo=zone)
    old = quota_reserve(user=user, service=Service.VIDEO, units=5)
    Reservation.objects.filter(pk=old.pk).update(created_at=late_evening)
    UsageEntry.objects.filter(reservation=old).update(created_at=late_evening)
    # older than 30 days: not in the series
    ancient = quota_reserve(user=user, service=Service.VIDEO, units=5)
    UsageEntry.objects.filter(reservation=ancient).update(created_at=timezone.now() - timedelta(days=45))
    Reservation.objects.filter(pk=ancient.pk).update(created_at=timezone.now() - timedelta(days=45))

    data = client_a.get("/api/user/usage-stats").json()["data"]
    daily = data["daily"]
    assert data["timezone"] == "America/New_York"
    assert len(daily) == 30
    assert daily[0]["date"] == (today - timedelta(days=29)).isoformat()
    assert daily[-1] == {"date": today.isoformat(), "requests": 2, "units": 2 + 3}
    assert daily[-3] == {"date": (today - timedelta(days=2)).isoformat(), "requests": 1, "units": 5}
    assert sum(day["units"] for day in daily) == 10
    assert daily[-2]["units"] == 0


def test_usage_stats_only_count_the_current_period(client_a, user):
    make_usage(user, 2)
    QuotaAccount.objects.filter(user=user).update(reset_date=timezone.now() - timedelta(seconds=1))
    quota_reserve(user=user, service=Service.EMBEDDING, units=1)  # resets lazily, then charges
    data = client_a.get("/api/user/usage-stats").json()["data"]
    assert data["totals"]["units"] == 1 == data["period"]["used"]
    assert data["services"]["chat"]["requests"] == 0
    assert sum(day["units"] for day in data["daily"]) == 2 * (2 + 3) + 1  # the series spans periods


def test_usage_stats_query_count_does_not_grow_with_jobs(client_a, user, django_assert_max_num_queries):
    quota_limit_set(account=quota_account_ensure(user=user), limit=10_000)
    make_usage(user, 2)
    with CaptureQueriesContext(connection) as few:
        assert client_a.get("/api/user/usage-stats").status_code == 200
    make_usage(user, 40)
    with CaptureQueriesContext(connection) as many:
        response = client_a.get("/api/user/usage-stats")
    assert response.json()["data"]["services"]["chat"]["requests"] == 42
    assert len(many) == len(few)
    with django_assert_max_num_queries(len(few)):
        client_a.get("/api/user/usage-stats")
