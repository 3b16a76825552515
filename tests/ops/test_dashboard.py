"""The staff dashboard: server-rendered numbers and SVG charts."""

from __future__ import annotations

import pytest
from django.test import Client

from ai_services.models import AIJob
from quotas.pricing import Service
from quotas.selectors import quota_account_get
from quotas.services import quota_reserve

pytestmark = pytest.mark.django_db


def test_dashboard_requires_staff(make_user):
    client = Client()
    client.force_login(make_user(email="plain@example.com"))
    response = client.get("/admin/dashboard/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_dashboard_shows_users_calls_failures_and_top_users(staff, make_user):
    heavy = make_user(email="heavy@example.com")
    quota_reserve(user=heavy, service=Service.VISION, units=90)
    quota_account_get(user=make_user(email="idle@example.com"))
    AIJob.objects.create(user=heavy, type="chat", status=AIJob.Status.COMPLETED)
    AIJob.objects.create(user=heavy, type="chat", status=AIJob.Status.FAILED)
    AIJob.objects.create(user=heavy, type="vision", status=AIJob.Status.COMPLETED)

    response = staff.get("/admin/dashboard/")
    assert response.status_code == 200
    html = response.content.decode()
    assert response.context["users_total"] == 3
    assert response.context["ai_total"] == 3
    assert response.context["ai_failed"] == 1
    assert "3 calls, 1 failed." in html
    assert "<svg" in html
    assert html.count('fill="#ba2121"') == 1  # one day with failures
    assert list(response.context["top_users"]) == [{"user__email": "heavy@example.com", "units": 90}]
    buckets = {b["label"]: b["count"] for b in response.context["quota_buckets"]}
    assert buckets["80-100%"] == 1
    assert buckets["0-25%"] >= 1
    assert "cdn" not in html.lower()


def test_dashboard_query_count_does_not_grow_with_jobs(staff, make_user, django_assert_max_num_queries):
    user = make_user()
    for _ in range(3):
        AIJob.objects.create(user=user, type="chat", status=AIJob.Status.COMPLETED)
    with django_assert_max_num_queries(20) as captured:
        staff.get("/admin/dashboard/")
    few = len(captured)
    for _ in range(30):
        AIJob.objects.create(user=user, type="chat", status=AIJob.Status.FAILED)
    with django_assert_max_num_queries(few):
        staff.get("/admin/dashboard/")
