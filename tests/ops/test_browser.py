"""End-to-end checks in a real headless Chromium: the Swagger UI authorize flow against a live server, and the
admin changelists a staff user logs into. Skipped only when the Debian chromium binary is absent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import NoReverseMatch, reverse

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
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
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

    # The dashboard is being added separately; check it only once its URL exists.
    try:
        dashboard = reverse("admin-dashboard")
    except NoReverseMatch:
        return
    response = page.goto(dashboard)
    assert response is not None
    assert response.status == 200
    expect(page.locator("#content")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "admin-dashboard.png"), full_page=True)
