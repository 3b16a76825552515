"""GET/PUT /api/user/profile."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_profile_has_the_seed_user_shape(client_a, user):
    response = client_a.get("/api/user/profile")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["email"] == "alice@example.com"
    assert data["name"] == "Alice"
    assert data["avatar"] is None
    assert data["isActive"] is True
    assert set(data["quota"]) == {"limit", "used", "resetDate"}
    assert {"id", "bio", "locale", "timezone", "provider", "createdAt", "lastLogin"} <= set(data)
    assert response["X-Quota-Limit"] == "100"


def test_update_editable_fields(client_a, user):
    response = client_a.put(
        "/api/user/profile",
        {"name": "Alice Liddell", "bio": "Curiouser.", "locale": "en_GB", "timezone": "Europe/London"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["message"] == "Profile updated"
    data = response.json()["data"]
    assert (data["name"], data["bio"], data["locale"], data["timezone"]) == (
        "Alice Liddell",
        "Curiouser.",
        "en-GB",
        "Europe/London",
    )
    user.refresh_from_db()
    assert (user.name, user.bio, user.locale, user.timezone) == (
        "Alice Liddell",
        "Curiouser.",
        "en-GB",
        "Europe/London",
    )


def test_partial_update_leaves_other_fields(client_a, user):
    client_a.put("/api/user/profile", {"bio": "One"}, format="json")
    response = client_a.patch("/api/user/profile", {"locale": "fr"}, format="json")
    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.name, user.bio, user.locale) == ("Alice", "One", "fr")


def test_email_cannot_be_changed_here(client_a, user):
    response = client_a.put("/api/user/profile", {"email": "mallory@example.com", "name": "M"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "email_not_editable"
    assert "email" in body["errors"]
    user.refresh_from_db()
    assert (user.email, user.name) == ("alice@example.com", "Alice")


def test_sending_the_unchanged_email_back_is_fine(client_a, user):
    response = client_a.put("/api/user/profile", {"email": "Alice@Example.com", "name": "Al"}, format="json")
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.name == "Al"


def test_read_only_fields_are_ignored(client_a, user):
    response = client_a.put("/api/user/profile", {"isStaff": True, "provider": "google", "bio": "x"}, format="json")
    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.is_staff, user.provider, user.bio) == (False, "local", "x")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"locale": "english please"}, "locale"),
        ({"name": ""}, "name"),
        ({"name": "x" * 151}, "name"),
        ({"name": ["Alice"]}, "name"),
        ({"bio": "b" * 501}, "bio"),
        ({"bio": {"text": "nested"}}, "bio"),
    ],
)
def test_invalid_values_are_400_with_the_field(client_a, user, body, field):
    response = client_a.put("/api/user/profile", body, format="json")
    assert response.status_code == 400
    payload = response.json()
    assert payload["code"] == "validation_error"
    assert field in payload["errors"]
    user.refresh_from_db()
    assert user.name == "Alice"


def test_malformed_json_is_400(client_a):
    response = client_a.generic("PUT", "/api/user/profile", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


def test_profile_needs_a_token(api):
    assert api.get("/api/user/profile").status_code == 401
    response = api.put("/api/user/profile", {"name": "x"}, format="json")
    assert response.status_code == 401
    assert response.json()["success"] is False
