"""The admin login is under the same brute-force protection as the API's sign-in."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db
LOGIN = "/admin/login/?next=/admin/"
LOCKED = "Too many failed sign-in attempts."


@pytest.fixture
def admin_user(make_user):
    return make_user(email="ops@example.com", is_staff=True, is_superuser=True)


def admin_login(client: Client, password: str, ip: str = "10.0.0.1", email: str = "ops@example.com"):
    return client.post(LOGIN, {"username": email, "password": password}, REMOTE_ADDR=ip)


def signed_in(client: Client) -> bool:
    return client.get("/admin/", REMOTE_ADDR="10.0.0.1").status_code == 200


def test_right_password_signs_in(admin_user, real_rate_limits):
    client = Client()
    response = admin_login(client, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert signed_in(client)


def test_five_wrong_passwords_lock_the_pair_and_the_owner_gets_in_elsewhere(admin_user, real_rate_limits, rate_clock):
    """The measured failure: 30 wrong passwords in 7 s were all checked, then the right one got in."""
    attacker = Client()
    pages = [admin_login(attacker, f"guess-{n}").content.decode() for n in range(5)]
    assert all("Please enter the correct email and password" in page for page in pages)
    for password in ("guess-6", PASSWORD):
        refused = admin_login(attacker, password)
        assert refused.status_code == 200  # the form again, with the refusal
        assert LOCKED in refused.content.decode()
    assert not signed_in(attacker)

    owner = Client()
    assert admin_login(owner, PASSWORD, ip="192.0.2.44").status_code == 302
    assert signed_in(owner)

    rate_clock.advance(900)
    assert admin_login(attacker, PASSWORD).status_code == 302


def test_api_and_admin_share_one_budget(api, admin_user, real_rate_limits):
    for _ in range(5):
        response = api.post(
            "/api/auth/login", {"email": admin_user.email, "password": "guess"}, format="json", REMOTE_ADDR="10.0.0.1"
        )
        assert response.status_code == 401
    assert LOCKED in admin_login(Client(), PASSWORD).content.decode()


def test_staff_only_and_unknown_emails_answer_like_a_wrong_password(make_user, real_rate_limits):
    make_user(email="member@example.com")
    client = Client()
    not_staff = admin_login(client, PASSWORD, email="member@example.com")
    assert "for a staff account" in not_staff.content.decode()
    assert not signed_in(client)
    unknown = admin_login(client, PASSWORD, email="nobody@example.com")
    assert "Please enter the correct email and password" in unknown.content.decode()
