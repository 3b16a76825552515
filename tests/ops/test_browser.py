"""End-to-end checks in a real headless Chromium: the Swagger UI authorize flow against a live server, and the
admin changelists a staff user logs into. Skipped only when the Debian chromium binary is absent."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "browser"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "Correct-Horse-42-battery"
TIMEOUT_MS = 20_000

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (run .ci/test-packages.sh)"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def page(live_server) -> Iterator[object]:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # expect() has a timeout of its own (5 s), apart from the context's: Swagger UI rendering the
    # whole schema can take longer than that on a loaded machine.
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def test_swagger_authorize_and_try_me(page) -> None:
    from playwright.sync_api import expect

    email = "swagger-browser@example.com"
    response = page.request.post(
        "/api/auth/register", data={"email": email, "password": PASSWORD, "name": "Swagger Browser"}
    )
    assert response.status == 201, response.text()
    token = response.json()["data"]["accessToken"]

    page.goto("/api-docs/")
    authorize = page.locator(".scheme-container button.authorize")
    expect(authorize).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "swagger-loaded.png"), full_page=True)

    authorize.click()
    dialog = page.locator(".modal-ux")
    expect(dialog).to_be_visible()
    # The bearer scheme's block is the one whose heading mentions "http, Bearer".
    bearer = dialog.locator(".auth-container").filter(has_text="Bearer").first
    bearer.locator("input").first.fill(token)
    bearer.locator("button.authorize").click()
    # Once accepted, Swagger UI swaps the input for a masked value and a logout button.
    expect(bearer.get_by_role("button", name="Remove authorization")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "swagger-authorized.png"))
    dialog.get_by_role("button", name="Close", exact=True).click()
    expect(dialog).to_be_hidden()

    operation = page.locator(".opblock.opblock-get").filter(
        has=page.locator('.opblock-summary-path[data-path="/api/auth/me"]')
    )
    operation.locator(".opblock-summary").first.click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    live = operation.locator(".live-responses-table")
    expect(live).to_contain_text(email)
    expect(live.locator("tr.response td.response-col_status").first).to_contain_text("200")
    page.screenshot(path=str(ARTIFACTS / "swagger-me.png"), full_page=True)


@pytest.fixture
def superuser_email(live_server) -> str:
    """Created before `page` starts Playwright: ORM calls made inside Playwright's greenlet get a connection of
    their own that is never closed, which then blocks dropping the PostgreSQL test database."""
    from accounts.models import User

    email = "admin-browser@example.com"
    User.objects.create_superuser(email, PASSWORD)
    return email


def test_admin_login_and_changelists(superuser_email, page) -> None:
    from playwright.sync_api import expect

    email = superuser_email
    page.goto("/admin/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "admin-index.png"), full_page=True)

    for name in ("accounts_user", "quotas_quotaaccount", "ai_services_aijob", "video_videojob"):
        url = reverse(f"admin:{name}_changelist")
        response = page.goto(url)
        assert response is not None, url
        assert response.status == 200, url
        expect(page.locator("#changelist")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=True)
    # The user we logged in as is listed on the users changelist.
    page.goto(reverse("admin:accounts_user_changelist"))
    expect(page.locator("#result_list")).to_contain_text(email)


@pytest.fixture
def dashboard_history(noon_today, superuser_email, make_user) -> tuple:
    """Several days of calls, charges and video jobs (made before Playwright starts, see above)."""
    from tests.ops.dashboard_data import make_history

    return make_history(make_user)


def _log_in(page, email: str) -> None:
    from playwright.sync_api import expect

    page.goto("/admin/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_be_visible()


def test_dashboard_charts_render_with_dates_and_values(superuser_email, dashboard_history, page) -> None:
    from playwright.sync_api import expect

    from tests.ops.dashboard_data import days_ago

    heavy, _light = dashboard_history
    _log_in(page, superuser_email)
    page.goto(reverse("admin:index"))
    page.click("#dashboard-link a")
    page.get_by_role("link", name="7 days", exact=True).click()
    expect(page.locator('.period strong[aria-current="true"]')).to_have_text("7 days")

    calls = page.locator("#chart-ai-calls")
    expect(calls.locator("figcaption")).to_have_text("AI calls per day, by modality")
    expect(calls.locator(".column")).to_have_count(7)
    # Dates on the x axis (the newest day always labelled), a scale on the y axis, a legend.
    x_labels = calls.locator(".x-tick").all_text_contents()
    assert days_ago(0).strftime("%b %d") in x_labels
    assert days_ago(6).strftime("%b %d") in x_labels
    y_labels = calls.locator(".y-tick").all_text_contents()
    assert y_labels[0] == "0"
    assert int(y_labels[-1]) >= 5
    expect(calls.locator(".legend")).to_contain_text("Speech-to-text")

    # The values on hover are the SVG titles; the drawn heights agree with them.
    day1, day3 = days_ago(1).isoformat(), days_ago(3).isoformat()
    chat = calls.locator(f'.column[data-day="{day1}"] .segment[data-series="chat"]')
    expect(chat.locator("title")).to_have_text(f"{day1} · Chat: 5 calls")
    vision = calls.locator(f'.column[data-day="{day3}"] .segment[data-series="vision"]')
    expect(vision.locator("title")).to_have_text(f"{day3} · Vision: 2 calls")
    chat.hover()
    chat_box, vision_box = chat.bounding_box(), vision.bounding_box()
    assert chat_box is not None
    assert vision_box is not None
    assert chat_box["height"] / vision_box["height"] == pytest.approx(5 / 2, rel=0.02)
    # The y tick at 0 sits on the x axis, where every column starts.
    zero_tick = calls.locator(".y-tick").first.bounding_box()
    assert zero_tick is not None
    assert abs((chat_box["y"] + chat_box["height"]) - (zero_tick["y"] + zero_tick["height"] / 2)) < 6

    errors = page.locator("#chart-error-codes")
    expect(errors.locator('.bar[data-group="provider_error"] .value')).to_have_text("2")
    expect(errors.locator('.bar[data-group="provider_timeout"] title')).to_have_text(
        "provider_timeout · Failed: 1 failed calls"
    )
    latency = page.locator("#chart-latency")
    expect(latency.locator('.bar[data-group="Chat"][data-series="p50"] .value')).to_have_text("250")
    expect(latency.locator('.bar[data-group="Chat"][data-series="p95"] .value')).to_have_text("385")
    units = page.locator("#chart-units")
    expect(units.locator(f'.column[data-day="{day1}"] .segment title')).to_have_text(f"{day1} · Chat: 8 units")
    video = page.locator("#chart-video")
    day2 = days_ago(2).isoformat()
    expect(video.locator(f'.column[data-day="{day2}"] title').first).to_have_text(f"{day2}: 3 video jobs in total")
    expect(page.locator("#queue-depth")).to_contain_text("waiting in queue")
    page.screenshot(path=str(ARTIFACTS / "admin-dashboard-7-days.png"), full_page=True)

    page.get_by_role("link", name="30 days", exact=True).click()
    expect(calls.locator(".column")).to_have_count(30)
    expect(calls.locator(f'.column[data-day="{days_ago(20).isoformat()}"] .segment title')).to_have_text(
        f"{days_ago(20).isoformat()} · Embedding: 1 calls"
    )
    page.screenshot(path=str(ARTIFACTS / "admin-dashboard-30-days.png"), full_page=True)

    page.locator("#top-users a", has_text=heavy.email).click()
    expect(page).to_have_url(re.compile(rf"/admin/accounts/user/{heavy.pk}/change/$"))
