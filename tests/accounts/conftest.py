"""Fixtures for the Google sign-in tests and the account changes a Google-only user confirms
with a fresh ID token."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.accounts.google_stub import CLIENT_ID, KID, key_and_certificate


@pytest.fixture(scope="module")
def google():
    """A fake `oauth2/v1/certs` endpoint that counts how often it is asked."""
    key, pem = key_and_certificate()
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


@pytest.fixture
def google_settings(settings, google):
    settings.GOOGLE_CLIENT_IDS = ["web-client.apps.googleusercontent.com", CLIENT_ID]
    settings.GOOGLE_CERTS_URL = google["url"]
    google["hits"] = 0
    google["down"] = False
