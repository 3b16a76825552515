"""The staff dashboard: server-rendered SVG charts with axes, dates and exact values, 7/30/90 days."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.test import Client

from core.charts import nice_ticks
from quotas.modalities import Service
from quotas.services import quota_account_ensure, quota_reserve
from tests.net import closed_port
from tests.ops.dashboard_data import ai_job, days_ago, make_history, usage, video_job
from video.models import VideoJob

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("noon_today")]


def bar(chart, day: date) -> dict:
    return next(b for b in chart.bars if b["day"] == day.isoformat())


def segment_values(chart, day: date) -> dict[str, float]:
    return {s["key"]: s["value"] for s in bar(chart, day)["segments"]}


def group_values(chart) -> dict[str, dict[str, float]]:
    return {g["label"]: {b["key"]: b["value"] for b in g["bars"]} for g in chart.bars}


def test_dashboard_requires_staff(make_user):
    client = Client()
    client.force_login(make_user(email="plain@example.com"))
    response = client.get("/admin/dashboard/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_nice_ticks_cover_the_peak_with_round_steps():
    assert nice_ticks(0) == [0.0, 1.0]
    assert nice_ticks(3) == [0, 1, 2, 3]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(95) == [0, 25, 50, 75, 100]
    assert nice_ticks(1200)[-1] >= 1200


@pytest.fixture
def history(make_user):
    return make_history(make_user)


def test_dashboard_charts_have_dates_axes_and_exact_values(staff, history):
    heavy, _light = history
    response = staff.get("/admin/dashboard/?days=7")
    assert response.status_code == 200
    context = response.context
    assert context["days"] == 7
    assert context["ai_total"] == 8
    assert context["ai_failed"] == 3

    calls = context["ai_calls_chart"]
    assert len(calls.bars) == 7
    assert segment_values(calls, days_ago(1)) == {"chat": 5}
    assert segment_values(calls, days_ago(3)) == {"whisper": 1, "vision": 2}
    assert bar(calls, days_ago(3))["title"] == f"{days_ago(3).isoformat()}: 3 calls in total"
    assert days_ago(0).strftime("%b %d") in [tick["label"] for tick in calls.x_ticks]
    assert calls.y_ticks[0]["label"] == "0"
    assert float(calls.y_ticks[-1]["label"]) >= 5

    assert segment_values(context["ai_failures_chart"], days_ago(3)) == {"whisper": 1, "vision": 1}
    assert group_values(context["modality_chart"]) == {
        "Chat": {"calls": 5, "failed": 1},
        "Speech-to-text": {"calls": 1, "failed": 1},
        "Vision": {"calls": 2, "failed": 1},
    }
    assert group_values(context["error_chart"]) == {"provider_error": {"failed": 2}, "provider_timeout": {"failed": 1}}
    # Linear interpolation between ranks (PostgreSQL's percentile_cont; the same on SQLite).
    assert group_values(context["latency_chart"]) == {
        "Chat": {"p50": 250.0, "p95": 385.0},
        "Vision": {"p50": 1000.0, "p95": 1000.0},
    }
    assert segment_values(context["units_chart"], days_ago(1)) == {"chat": 8}
    assert segment_values(context["units_chart"], days_ago(3)) == {"vision": 6}
    assert segment_values(context["video_chart"], days_ago(2)) == {"completed": 2, "failed": 1}
    assert dict(context["video_totals"])["Queued"] == 1
    assert context["queue_depth"] is not None

    html = response.content.decode()
    assert f"<title>{days_ago(1).isoformat()} · Chat: 5 calls</title>" in html
    assert "<title>Chat · p95: 385 ms</title>" in html
    assert "cdn" not in html.lower()
    assert "<script" not in html.split('id="dashboard"')[1]

    top = context["top_users"]
    assert [(row["user__email"], row["units"]) for row in top] == [("heavy@example.com", 14)]
    assert f'href="/admin/accounts/user/{heavy.pk}/change/"' in html


def test_period_choice_widens_the_window_and_bad_values_fall_back(staff, history):
    wide = staff.get("/admin/dashboard/?days=30").context
    assert wide["ai_total"] == 9
    assert len(wide["ai_calls_chart"].bars) == 30
    assert segment_values(wide["ai_calls_chart"], days_ago(20)) == {"embedding": 1}
    assert [row["user__email"] for row in wide["top_users"]] == ["heavy@example.com", "light@example.com"]
    assert len(staff.get("/admin/dashboard/?days=90").context["ai_calls_chart"].bars) == 90
    for bad in ("13", "abc", "-1"):
        assert staff.get(f"/admin/dashboard/?days={bad}").context["days"] == 30
    html = staff.get("/admin/dashboard/?days=7").content.decode()
    assert re.search(r'<strong aria-current="true">7 days</strong>', html)
    assert 'href="?days=90"' in html


def test_empty_dashboard_renders(staff):
    response = staff.get("/admin/dashboard/")
    assert response.status_code == 200
    assert response.context["ai_total"] == 0
    assert "No data in this period" in response.content.decode()


def test_queue_depth_unavailable_when_the_broker_does_not_answer(staff, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = staff.get("/admin/dashboard/")
    assert response.status_code == 200
    assert response.context["queue_depth"] is None
    assert "broker not answering" in response.content.decode()


def test_quota_buckets(staff, make_user):
    heavy = make_user(email="heavy@example.com")
    quota_reserve(user=heavy, service=Service.VISION, units=90)
    quota_account_ensure(user=make_user(email="idle@example.com"))
    buckets = {b["label"]: b["count"] for b in staff.get("/admin/dashboard/").context["quota_buckets"]}
    assert buckets["80-100%"] == 1
    assert buckets["0-25%"] >= 1


def test_dashboard_query_count_does_not_grow_with_data(staff, make_user, django_assert_max_num_queries):
    user = make_user()
    ai_job(user, kind="chat", ms=10)
    with django_assert_max_num_queries(20) as captured:
        staff.get("/admin/dashboard/?days=90")
    few = len(captured)
    others = [make_user() for _ in range(5)]
    for i in range(40):
        owner = others[i % 5]
        kind = ("chat", "whisper", "tts", "vision", "embedding")[i % 5]
        ai_job(owner, kind=kind, day=i % 60, failed=i % 3 == 0, code=f"code_{i % 4}", ms=i * 10)
        usage(owner, service=Service.CHAT, units=i + 1, day=i % 60)
        video_job(owner, status=VideoJob.Status.COMPLETED if i % 2 else VideoJob.Status.FAILED, day=i % 60)
    with django_assert_max_num_queries(few):
        staff.get("/admin/dashboard/?days=90")
