"""Small hostile requests that used to crash the API (500) now get a clear 4xx in the envelope.

Each test sends what a fuzzer or an attacker sent: too many form fields or files, JSON nested
hundreds deep, text PostgreSQL cannot store (NUL, lone surrogates), OPTIONS, a forged Host.
"""

from __future__ import annotations

import io
import json
import re
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.models import User
from ai_services.models import Conversation
from embeddings.models import Embedding
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def assert_envelope(response, status: int | tuple[int, ...]) -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert body["success"] is False
    assert isinstance(body["message"], str)
    assert body["message"]
    assert isinstance(body["code"], str)
    assert body["code"]
    assert isinstance(body["errors"], dict)
    for field, messages in body["errors"].items():
        assert isinstance(field, str)
        assert isinstance(messages, list), body["errors"]
        assert all(isinstance(m, str) for m in messages), body["errors"]
    return body


def raw_json(client, method: str, path: str, text: str):
    """Send `text` as the JSON body byte for byte (the test client's encoder would refuse a lone
    surrogate, which is exactly what an attacker's `\\ud800` escape decodes to)."""
    return client.generic(method, path, data=text.encode(), content_type="application/json")


# --- too many form fields / files --------------------------------------------------------------


def _many_fields(count: int) -> str:
    return "&".join(f"f{i}=1" for i in range(count))


def test_too_many_form_fields_on_bulk_delete_is_400(client_a):
    response = client_a.generic(
        "POST", "/api/embeddings/bulk-delete", data=_many_fields(1001), content_type="application/x-www-form-urlencoded"
    )
    body = assert_envelope(response, 400)
    assert body["code"] == "too_many_fields"


def test_too_many_form_fields_on_anonymous_login_is_400(api):
    response = api.generic(
        "POST", "/api/auth/login", data=_many_fields(1001), content_type="application/x-www-form-urlencoded"
    )
    body = assert_envelope(response, 400)
    assert body["code"] == "too_many_fields"


def test_too_many_multipart_files_on_avatar_is_400_and_nothing_stored(client_a, user):
    files = {f"avatar{i}": SimpleUploadedFile(f"a{i}.png", b"x", content_type="image/png") for i in range(101)}
    response = client_a.post("/api/user/avatar", files, format="multipart")
    body = assert_envelope(response, 400)
    assert body["code"] == "too_many_files"
    user.refresh_from_db()
    assert not user.avatar


# --- error bodies always {field: [messages]} ---------------------------------------------------


def test_bulk_delete_item_errors_are_flat_lists_of_messages(client_a):
    response = client_a.post("/api/embeddings/bulk-delete", {"ids": ["x", 0, 5]}, format="json")
    body = assert_envelope(response, 400)
    assert set(body["errors"]) == {"ids.0", "ids.1"}


# --- OPTIONS -----------------------------------------------------------------------------------


def _concrete(path: str) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1).lower()
        return "1" if name in {"index"} or (name.endswith("id") and "embedding" in name) else str(uuid.uuid4())

    return re.sub(r"\{([^}]+)\}", value, path)


def test_options_answers_in_the_envelope_on_every_operation(client_a, api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = [_concrete(path) for path in schema["paths"]]
    assert len(paths) > 20
    for path in paths:
        for client in (api, client_a):
            response = client.options(path)
            assert response["Content-Type"].startswith("application/json"), path
            body = response.json()
            if response.status_code == 200:
                assert body["success"] is True, (path, body)
                assert isinstance(body["data"]["methods"], list), (path, body)
                assert "OPTIONS" in response["Allow"]
            else:
                assert_envelope(response, (401, 404, 405))


# --- deep nesting ------------------------------------------------------------------------------


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize(
    ("method", "path", "wrap"),
    [
        ("POST", "/api/auth/login", lambda deep: '{"email":"a@example.com","password":' + deep + "}"),
        ("PATCH", "/api/user/profile", lambda deep: '{"name":' + deep + "}"),
        ("POST", "/api/embeddings/create", lambda deep: '{"text":"hello","metadata":' + deep + "}"),
    ],
)
def test_json_nested_900_deep_is_400(client_a, method, path, wrap):
    response = raw_json(client_a, method, path, wrap(_nested(900)))
    body = assert_envelope(response, 400)
    assert "nested" in body["message"]
    assert not Embedding.objects.exists()


def test_json_array_nested_deep_is_400(api):
    response = raw_json(api, "POST", "/api/auth/login", "[" * 5000 + "]" * 5000)
    assert_envelope(response, 400)


# --- text PostgreSQL can't store ---------------------------------------------------------------

NUL = "\\u0000"
SURROGATE = "\\ud800"


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize(
    ("method", "path", "template", "field"),
    [
        ("POST", "/api/embeddings/create", '{"text":"hello","metadata":{"note":"a%sb"}}', "metadata.note"),
        ("POST", "/api/embeddings/create", '{"text":"hello","metadata":{"k%s":1}}', "metadata"),
        ("POST", "/api/embeddings/create", '{"text":"hel%slo"}', "text"),
        ("POST", "/api/embeddings/search", '{"query":"hello","filter":{"note":"a%sb"}}', "filter.note"),
        ("PATCH", "/api/user/profile", '{"name":"Mal%sory"}', "name"),
        ("POST", "/api/ai/chat", '{"message":"hi%s"}', "message"),
        ("POST", "/api/auth/register", '{"email":"x@example.com","password":"Pass%sword-1234","name":"X"}', "password"),
    ],
)
def test_unstorable_text_is_refused_at_validation(client_a, user, method, path, template, field, bad):
    response = raw_json(client_a, method, path, template % bad)
    body = assert_envelope(response, 400)
    assert body["code"] == "validation_error"
    assert any(key.startswith(field) for key in body["errors"]), body["errors"]
    user.refresh_from_db()
    assert user.name == "Alice"
    assert not Embedding.objects.exists()
    assert not Conversation.objects.exists()
    assert not User.objects.filter(email="x@example.com").exists()


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "lone-surrogate"])
def test_unstorable_conversation_title_is_refused(client_a, user, bad):
    conversation = Conversation.objects.create(user=user, title="Mine")
    response = raw_json(client_a, "PATCH", f"/api/ai/conversations/{conversation.id}", f'{{"title":"t{bad}x"}}')
    body = assert_envelope(response, 400)
    assert "title" in body["errors"]
    conversation.refresh_from_db()
    assert conversation.title == "Mine"


def test_unstorable_text_in_a_form_field_is_refused(client_a):
    response = client_a.post("/api/ai/text-to-speech", "text=a%00b", content_type="application/x-www-form-urlencoded")
    body = assert_envelope(response, 400)
    assert "text" in body["errors"]


def test_upload_filename_with_control_characters_and_traversal_is_harmless(client_a, user):
    png = io.BytesIO()
    Image.new("RGB", (20, 20), (1, 2, 3)).save(png, format="PNG")
    response = client_a.post(
        "/api/user/avatar",
        {"avatar": SimpleUploadedFile("../../etc/me\x00\x1b.png", png.getvalue(), content_type="image/png")},
        format="multipart",
    )
    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.avatar.name.startswith(f"avatars/{user.pk}/")
    assert ".." not in user.avatar.name
    assert "\x00" not in user.avatar.name


def test_nul_in_a_query_parameter_is_400(client_a):
    response = client_a.get("/api/video/jobs?status=a%00b")
    assert_envelope(response, 400)


# --- Host header -------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example.com", "bad host", "a" * 300])
def test_bad_host_under_api_answers_the_envelope(api, host):
    response = api.get("/api/auth/me", HTTP_HOST=host)
    body = assert_envelope(response, 400)
    assert body["code"] == "bad_request"


def test_bad_host_outside_api_keeps_djangos_answer(api):
    response = api.get("/admin/", HTTP_HOST="evil.example.com")
    assert response.status_code == 400
    assert not response["Content-Type"].startswith("application/json")


def test_json_body_is_still_accepted_when_harmless(client_a, user):
    response = raw_json(client_a, "PATCH", "/api/user/profile", json.dumps({"name": "Ali\u00e9 \U0001f600"}))
    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.name == "Ali\u00e9 \U0001f600"


def test_nul_and_control_characters_in_every_query_parameter_are_harmless(client_a, api):
    """Every query parameter of every GET operation in the schema, sent with a NUL and other
    control characters: a 4xx or a normal answer, never a 5xx (a NUL reaching PostgreSQL is one)."""
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    probed = 0
    for path, operations in schema["paths"].items():
        parameters = [p["name"] for p in operations.get("get", {}).get("parameters", []) if p.get("in") == "query"]
        for name in parameters:
            for value in ("a%00b", "%00", "%1b%5b31m", "%ff%fe", "x" * 5000):
                response = client_a.get(f"{_concrete(path)}?{name}={value}")
                assert response.status_code < 500, (path, name, value, response.content[:300])
                assert response["Content-Type"].startswith(("application/json", "image/", "text/vtt")), path
                probed += 1
    assert probed > 20


def test_control_characters_in_the_device_name_header_are_dropped(api, user):
    response = api.post(
        "/api/auth/login",
        {"email": user.email, "password": PASSWORD},
        format="json",
        HTTP_X_DEVICE_NAME="Pixel\x00 8\x1b",
        HTTP_USER_AGENT="MyApp/1.0\x00 (Android 14)",
    )
    assert response.status_code == 200, response.content
    session = user.device_sessions.get()
    assert session.device_name == "Pixel 8"
    assert session.user_agent == "MyApp/1.0 (Android 14)"


@pytest.mark.parametrize("key", ["a\x00b", "line\nbreak", "esc\x1b[0m"])
def test_control_characters_in_the_idempotency_key_are_400(client_a, key):
    response = client_a.post(
        "/api/video/upload",
        {"video": SimpleUploadedFile("clip.mp4", b"\x00" * 64, content_type="video/mp4")},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    body = assert_envelope(response, 400)
    assert "printable" in body["message"]
