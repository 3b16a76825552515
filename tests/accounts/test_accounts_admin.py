"""Staff views of users and device sessions: quota at a glance, and sign-outs that take effect at
once (through `accounts.services`, like the API's own logout)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import DeviceSession
from quotas.services import quota_account_ensure

pytestmark = pytest.mark.django_db
USERS = reverse("admin:accounts_user_changelist")
SESSIONS = reverse("admin:accounts_devicesession_changelist")


def test_user_list_shows_quota_use_in_constant_queries(staff, user, make_user):
    account = quota_account_ensure(user=user)
    with CaptureQueriesContext(connection) as few:
        page = staff.get(USERS).content.decode()
    assert f"0 / {account.limit}" in page
    for index in range(5):
        quota_account_ensure(user=make_user(email=f"q{index}@example.com"))
    with CaptureQueriesContext(connection) as many:
        page = staff.get(USERS, {"o": "4"}).content.decode()  # ordered by quota used
    assert "q4@example.com" in page
    assert len(many) == len(few)


def test_sign_out_every_device_action_revokes_tokens_at_once(staff, auth_client, user):
    phone, tablet = auth_client(), auth_client()
    assert phone.get("/api/auth/me").status_code == 200

    response = staff.post(USERS, {"action": "revoke_all_sessions", "_selected_action": [user.pk]}, follow=True)

    assert "Revoked 2 sessions." in response.content.decode()
    for client in (phone, tablet):
        assert client.get("/api/auth/me").status_code == 401
    assert set(DeviceSession.objects.values_list("revoked_reason", flat=True)) == {"admin"}


def test_revoke_session_action_signs_out_only_that_device(staff, auth_client, user):
    phone, tablet = auth_client(), auth_client()
    phone_session = DeviceSession.objects.get(id=phone.tokens["sessionId"])

    response = staff.post(SESSIONS, {"action": "revoke", "_selected_action": [str(phone_session.pk)]}, follow=True)

    assert "Revoked 1 sessions." in response.content.decode()
    assert phone.get("/api/auth/me").status_code == 401
    assert tablet.get("/api/auth/me").status_code == 200
    assert staff.get(SESSIONS, {"q": user.email, "provider__exact": "local"}).status_code == 200


def test_google_links_are_listed_and_unused_allauth_pages_are_gone(staff, make_user):
    from allauth.socialaccount.models import SocialAccount

    for index in range(3):
        SocialAccount.objects.create(user=make_user(email=f"g{index}@example.com"), provider="google", uid=str(index))
    links = reverse("admin:socialaccount_socialaccount_changelist")
    with CaptureQueriesContext(connection) as few:
        page = staff.get(links).content.decode()
    assert all(f"g{index}@example.com" in page for index in range(3))
    SocialAccount.objects.create(user=make_user(email="g3@example.com"), provider="google", uid="3")
    with CaptureQueriesContext(connection) as many:
        assert "g3@example.com" in staff.get(links, {"q": "g3@"}).content.decode()
    assert len(many) <= len(few)
    assert staff.get(reverse("admin:socialaccount_socialaccount_add")).status_code == 403
    for unused in ("socialaccount/socialapp", "socialaccount/socialtoken", "account/emailaddress"):
        assert staff.get(f"/admin/{unused}/").status_code == 404
