"""Google sign-in, verified against a local stand-in for Google's certificate endpoint."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from accounts.models import User

pytestmark = pytest.mark.django_db
CLIENT_ID = "android-client.apps.googleusercontent.com"
KID = "test-key-1"


def _key_and_certificate():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def google():
    """A fake `oauth2/v1/certs` endpoint that counts how often it is asked."""
    key, pem = _key_and_certificate()
    state = {"hits": 0, "down": False}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            state["hits"] += 1
            if state["down"]:
                self.send_response(503)
                self.end_headers()
                return
            body = json.dumps({KID: pem}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "public, max-age=3600")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/oauth2/v1/certs"
    state["key"] = key
    yield state
    server.shutdown()


@pytest.fixture(autouse=True)
def _google_settings(settings, google):
    settings.GOOGLE_CLIENT_IDS = ["web-client.apps.googleusercontent.com", CLIENT_ID]
    settings.GOOGLE_CERTS_URL = google["url"]
    google["hits"] = 0
    google["down"] = False


def id_token(google, **overrides) -> str:
    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com",
        "aud": CLIENT_ID,
        "sub": "1234567890",
        "email": "gina@example.com",
        "email_verified": True,
        "name": "Gina Google",
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    key = overrides.pop("_key", None) or google["key"]
    claims.pop("_key", None)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})


def test_google_sign_in_creates_user_and_answers_like_login(api, google):
    response = api.post("/api/auth/google", {"idToken": id_token(google)}, format="json")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert set(data) >= {"user", "accessToken", "refreshToken"}
    assert data["user"]["email"] == "gina@example.com"
    assert data["user"]["provider"] == "google"
    assert data["user"]["name"] == "Gina Google"
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {data['accessToken']}")
    assert api.get("/api/auth/me").json()["data"]["email"] == "gina@example.com"


def test_google_sign_in_links_existing_account_by_verified_email(api, google, make_user):
    existing = make_user(email="gina@example.com")
    response = api.post("/api/auth/google", {"idToken": id_token(google)}, format="json")
    assert response.status_code == 200
    assert response.json()["data"]["user"]["id"] == existing.id
    assert User.objects.filter(email__iexact="gina@example.com").count() == 1
    # Same Google account again: linked by its subject, not a new user
    again = api.post("/api/auth/google", {"idToken": id_token(google, email="gina.new@example.com")}, format="json")
    assert again.json()["data"]["user"]["id"] == existing.id


def test_google_keys_are_cached_between_sign_ins(api, google):
    for _ in range(3):
        assert api.post("/api/auth/google", {"idToken": id_token(google)}, format="json").status_code == 200
    assert google["hits"] == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "someone-else.apps.googleusercontent.com"},
        {"iss": "https://evil.example.com"},
        {"exp": int(time.time()) - 60},
    ],
)
def test_google_rejects_invalid_tokens(api, google, overrides):
    response = api.post("/api/auth/google", {"idToken": id_token(google, **overrides)}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_google_token"
    assert not User.objects.exists()


def test_google_rejects_token_signed_by_another_key(api, google):
    other_key, _ = _key_and_certificate()
    response = api.post("/api/auth/google", {"idToken": id_token(google, _key=other_key)}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_google_token"


def test_google_rejects_unverified_email(api, google):
    response = api.post("/api/auth/google", {"idToken": id_token(google, email_verified=False)}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "email_not_verified"


def test_google_down_is_503(api, google):
    google["down"] = True
    response = api.post("/api/auth/google", {"idToken": id_token(google)}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "google_unavailable"


def test_google_missing_token_is_400(api):
    response = api.post("/api/auth/google", {}, format="json")
    assert response.status_code == 400
    assert "idToken" in response.json()["errors"]


def test_google_not_configured_is_503(api, google, settings):
    settings.GOOGLE_CLIENT_IDS = []
    response = api.post("/api/auth/google", {"idToken": id_token(google)}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "google_not_configured"
