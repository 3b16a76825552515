"""Outages of the stores behind the API, through real processes: gunicorn pointed at a Redis port
with nothing listening (then at a redis-server this test starts there), and at a relay in front
of PostgreSQL that stops and starts again. Every answer stays in the envelope: what can work
without the store works, what cannot is a 503 with a machine code, nothing is charged for a job
that was not queued, and service resumes without restarting anything."""

from __future__ import annotations

import math
import struct
import wave
from io import BytesIO
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from ai_services.models import AIJob
from quotas.models import Reservation, UsageEntry
from tests.celery_worker import _database_url
from tests.ops.live_stores import RedisServer, TcpRelay, backend, free_port
from tests.video.media_fixtures import make_clip
from video.models import VideoJob

pytestmark = pytest.mark.django_db(transaction=True)


def wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    buffer = BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(
            b"".join(
                struct.pack("<h", int(3000 * math.sin(2 * math.pi * 440 * i / rate)))
                for i in range(int(seconds * rate))
            )
        )
    return buffer.getvalue()


def assert_unavailable(response, code: str) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["success"] is False
    assert body["code"] == code
    assert int(response.headers["Retry-After"]) > 0


def net_units(email: str) -> int:
    return sum(UsageEntry.objects.filter(user__email=email).values_list("units", flat=True))


def test_redis_outage_refuses_only_what_needs_the_broker_and_recovers(tmp_path):
    redis = RedisServer(free_port())  # not started yet: nothing listens on its port
    clip = make_clip(tmp_path / "clip.mp4", seconds=2)
    video = clip.read_bytes()
    stores = {"REDIS_URL": redis.url, "CELERY_BROKER_URL": redis.url, "RATE_LIMITS_ENABLED": "false"}
    try:
        with backend(tmp_path, DATABASE_URL=_database_url(), **stores) as server:
            email = "redis-outage@example.com"
            user = server.register(email)
            token = user["accessToken"]

            # Token refresh keeps working: its retry grace window is a convenience kept in the cache.
            refreshed = server.call("POST", "/api/auth/refresh", json={"refreshToken": user["refreshToken"]})
            assert refreshed.status_code == 200, refreshed.text
            token = refreshed.json()["data"]["accessToken"]

            # A video the broker cannot take is refused, not reported as queued, and not charged.
            upload = server.call(
                "POST", "/api/video/upload", token=token, files={"video": ("clip.mp4", video, "video/mp4")}
            )
            assert_unavailable(upload, "queue_unavailable")
            assert not VideoJob.objects.filter(user__email=email).exists()
            assert not list((tmp_path / "media").rglob("*.mp4")), "the refused upload's file is removed"
            assert net_units(email) == 0

            # The same for a queued transcription: failed with the code, refunded, its upload removed.
            queued = server.call(
                "POST",
                "/api/ai/speech-to-text",
                token=token,
                files={"audio": ("a.wav", wav(), "audio/wav")},
                data={"async": "true"},
            )
            assert_unavailable(queued, "queue_unavailable")
            job = AIJob.objects.get(user__email=email)
            assert (job.status, job.error_code, job.units_charged, job.input_file.name) == (
                "failed",
                "queue_unavailable",
                0,
                "",
            )
            assert Reservation.objects.get(pk=job.reservation_id).status == "refunded"
            assert net_units(email) == 0
            quota = server.call("GET", "/api/user/quota", token=token)
            assert quota.status_code == 200, quota.text

            # Redis comes back on the same port: the same processes queue again.
            redis.start()
            upload = server.call(
                "POST", "/api/video/upload", token=token, files={"video": ("clip.mp4", video, "video/mp4")}
            )
            assert upload.status_code == 202, upload.text
            assert VideoJob.objects.get(id=upload.json()["data"]["id"]).status == "queued"
            assert net_units(email) == 6  # the video's 5 and its captions' 1 (the clip has audio)

            # And again down: refused again, the queued job's charge untouched.
            redis.kill()
            upload = server.call(
                "POST", "/api/video/upload", token=token, files={"video": ("clip.mp4", video, "video/mp4")}
            )
            assert_unavailable(upload, "queue_unavailable")
            assert net_units(email) == 6
    finally:
        redis.kill()


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite is a file in the process: there is no server to lose"
)
def test_postgres_outage_answers_503_and_recovers_without_restart(tmp_path):
    db = connection.settings_dict
    relay = TcpRelay((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)))
    relay.start()
    parts = urlsplit(_database_url())
    through_relay = urlunsplit(parts._replace(netloc=f"{parts.username or ''}@127.0.0.1:{relay.port}"))
    try:
        with backend(tmp_path, DATABASE_URL=through_relay, RATE_LIMITS_ENABLED="false") as server:
            user = server.register("pg-outage@example.com")
            token = user["accessToken"]
            assert server.call("GET", "/api/auth/me", token=token).status_code == 200

            relay.stop()  # PostgreSQL "restarts": connections drop, nothing listens
            assert_unavailable(server.call("GET", "/api/auth/me", token=token), "database_unavailable")
            login = server.call(
                "POST", "/api/auth/login", json={"email": "pg-outage@example.com", "password": "Outage-Pass-123"}
            )
            assert_unavailable(login, "database_unavailable")

            relay.start()
            me = server.call("GET", "/api/auth/me", token=token)
            assert me.status_code == 200, me.text
            assert me.json()["data"]["email"] == "pg-outage@example.com"
    finally:
        relay.stop()
