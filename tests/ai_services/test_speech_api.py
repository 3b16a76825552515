"""Speech-to-text and text-to-speech endpoints, on the local engines (and the fake OpenAI server
where the point is billing or a provider failure)."""

from __future__ import annotations

import subprocess

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from ai_services.models import AIJob
from quotas.models import Reservation
from quotas.selectors import quota_account_forget, quota_account_get
from quotas.services import quota_limit_set
from tests.ai_services.conftest import wav_bytes
from tests.text_metrics import wer

STT = "/api/ai/speech-to-text"
TTS = "/api/ai/text-to-speech"
SENTENCE = "The quick brown fox jumps over the lazy dog."
# Whisper may mishear a word of the nine ("quit" for "quick" was seen); two would be a real regression.
MAX_WER = 0.12


def used_units(user) -> int:
    quota_account_forget(user=user)
    return quota_account_get(user=user).used


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> dict[str, bytes]:
    """The sentence spoken by the local voice, in every container the endpoint accepts (and FLAC)."""
    import imageio_ffmpeg

    from ai_services.providers.local import piper_tts

    samples, rate = piper_tts.synthesize(SENTENCE)
    files = {fmt: piper_tts.encode_audio(samples, rate, fmt) for fmt in ("wav", "mp3", "opus", "flac")}
    folder = tmp_path_factory.mktemp("spoken")
    (folder / "in.wav").write_bytes(files["wav"])
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    source, target = str(folder / "in.wav"), str(folder / "out.m4a")
    command = [ffmpeg, "-loglevel", "error", "-i", source, "-c:a", "aac", "-f", "ipod", "-y", target]
    subprocess.run(command, check=True)
    files["m4a"] = (folder / "out.m4a").read_bytes()
    return files


def upload(data: bytes, name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


# --- Speech-to-text --------------------------------------------------------------------------


def test_transcribes_speech_with_the_local_engine(local_settings, client_a, user, spoken):
    response = client_a.post(STT, {"audio": upload(spoken["wav"], "fox.wav")}, format="multipart")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert set(data) >= {"text", "language", "duration", "segments", "jobId"}
    assert wer(SENTENCE, data["text"]) <= MAX_WER, data["text"]
    assert data["language"] == "en"
    assert 1.5 < data["duration"] < 6
    assert data["segments"][0]["end"] > data["segments"][0]["start"]
    job = AIJob.objects.get(id=data["jobId"])
    assert job.type == "whisper"
    assert job.status == "completed"
    assert job.provider == "local"
    assert job.model == "whisper-base"
    assert job.units_charged == 1
    assert job.input["format"] == "wav"
    assert job.input["filename"] == "fox.wav"
    assert "audio" not in job.input  # a summary, never the bytes
    assert used_units(user) == 1


@pytest.mark.parametrize(
    ("fmt", "name"), [("mp3", "a.mp3"), ("opus", "a.ogg"), ("m4a", "a.m4a"), ("wav", "misnamed.mp3")]
)
def test_accepts_mp3_ogg_m4a_by_content(openai_settings, fake_openai, client_a, spoken, fmt, name):
    # The format is decided by probing the content (the provider here is the fake server, so the
    # test is about that check, not about transcription quality).
    response = client_a.post(STT, {"audio": upload(spoken[fmt], name)}, format="multipart")
    assert response.status_code == 200, response.content
    job = AIJob.objects.get()
    assert job.input["format"] == {"opus": "ogg"}.get(fmt, fmt)
    assert job.input["duration"] == pytest.approx(2.5, abs=1.0)
    [request] = fake_openai.requests_to("/audio/transcriptions")
    assert request.body["file"]["size"] == len(spoken[fmt])


def test_language_and_prompt_reach_the_provider(openai_settings, fake_openai, client_a):
    audio = upload(wav_bytes(1.0), "a.wav")
    response = client_a.post(STT, {"audio": audio, "language": "FR", "prompt": "Renard"}, format="multipart")
    assert response.status_code == 200
    [request] = fake_openai.requests_to("/audio/transcriptions")
    assert request.body["language"] == "fr"
    assert request.body["prompt"] == "Renard"
    assert request.body["model"] == "whisper-1"
    assert request.body["file"]["filename"] == "a.wav"


def test_quota_counts_started_minutes_after_probing(openai_settings, fake_openai, client_a, user):
    audio = upload(wav_bytes(61.0, rate=8000, tone=False), "long.wav")
    response = client_a.post(STT, {"audio": audio}, format="multipart")
    assert response.status_code == 200
    job = AIJob.objects.get()
    assert job.units_charged == 2
    assert job.input["duration"] == pytest.approx(61.0, abs=0.01)
    assert used_units(user) == 2


def test_quota_exhausted_is_429(openai_settings, fake_openai, client_a, user):
    quota_limit_set(account=quota_account_get(user=user), limit=1)
    response = client_a.post(
        STT, {"audio": upload(wav_bytes(61.0, rate=8000, tone=False), "a.wav")}, format="multipart"
    )
    assert response.status_code == 429
    assert response.json()["code"] == "quota_exceeded"
    assert fake_openai.requests == []
    assert AIJob.objects.count() == 0


def test_fake_audio_is_415(local_settings, client_a, user):
    fake = upload(b"this is not audio at all, only text pretending " * 50, "song.mp3")
    response = client_a.post(STT, {"audio": fake}, format="multipart")
    assert response.status_code == 415
    body = response.json()
    assert body["success"] is False
    assert body["code"] == "unsupported_audio"
    assert AIJob.objects.count() == 0
    assert used_units(user) == 0


def test_audio_in_a_format_not_on_the_list_is_415(local_settings, client_a, spoken):
    response = client_a.post(STT, {"audio": upload(spoken["flac"], "a.flac")}, format="multipart")
    assert response.status_code == 415
    assert "flac" in response.json()["message"]


def test_oversized_audio_is_413(local_settings, client_a):
    local_settings.AI_AUDIO_MAX_BYTES = 50_000
    response = client_a.post(STT, {"audio": upload(wav_bytes(2.0), "big.wav")}, format="multipart")
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"


def test_audio_longer_than_the_limit_is_400(local_settings, client_a):
    local_settings.AI_AUDIO_MAX_SECONDS = 1
    response = client_a.post(STT, {"audio": upload(wav_bytes(2.0, rate=8000), "long.wav")}, format="multipart")
    assert response.status_code == 400
    assert response.json()["code"] == "audio_too_long"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "audio"),
        ({"audio": "not a file"}, "audio"),
        ({"language": "english"}, "language"),
        ({"async": "maybe"}, "async"),
    ],
)
def test_stt_validation(local_settings, client_a, payload, field):
    if field != "audio":
        payload = {"audio": upload(wav_bytes(0.5), "a.wav"), **payload}
    response = client_a.post(STT, payload, format="multipart")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_empty_file_is_400(local_settings, client_a):
    response = client_a.post(STT, {"audio": upload(b"", "empty.wav")}, format="multipart")
    assert response.status_code == 400
    assert "audio" in response.json()["errors"]


def test_json_body_is_415(local_settings, client_a):
    response = client_a.post(STT, {"audio": "base64..."}, format="json")
    assert response.status_code == 415


def test_no_token_is_401(local_settings, api):
    assert api.post(STT, {"audio": upload(wav_bytes(0.5), "a.wav")}, format="multipart").status_code == 401


def test_provider_down_is_recorded_and_refunded(openai_settings, fake_openai, client_a, user):
    fake_openai.fail_next("503", "503", "503")
    response = client_a.post(STT, {"audio": upload(wav_bytes(1.0), "a.wav")}, format="multipart")
    assert response.status_code == 503
    assert response.json()["code"] == "provider_unavailable"
    job = AIJob.objects.get()
    assert job.status == "failed"
    assert job.error_code == "provider_unavailable"
    assert Reservation.objects.get(pk=job.reservation_id).status == "refunded"
    assert used_units(user) == 0


def test_async_transcription_is_queued_then_polled(
    local_settings, client_a, user, spoken, celery_eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_a.post(STT, {"audio": upload(spoken["wav"], "fox.wav"), "async": "true"}, format="multipart")
    assert response.status_code == 202, response.content
    data = response.json()["data"]
    assert data["status"] == "pending"
    job = AIJob.objects.get(id=data["jobId"])
    assert job.units_charged == 1
    stored = job.input_file.name
    assert default_storage.exists(stored)
    assert used_units(user) == 1  # reserved at request time

    assert len(callbacks) == 1
    callbacks[0]()  # the commit hook queues the task; Celery runs it eagerly here

    polled = client_a.get(f"/api/ai/jobs/{job.id}").json()["data"]
    assert polled["status"] == "completed"
    assert wer(SENTENCE, polled["output"]["text"]) <= MAX_WER, polled["output"]["text"]
    assert polled["output"]["duration"] > 1
    assert polled["processingTime"] is not None
    assert not default_storage.exists(stored)
    assert used_units(user) == 1


def test_async_job_that_fails_in_the_worker_is_refunded(
    openai_settings, fake_openai, client_a, user, celery_eager, django_capture_on_commit_callbacks
):
    fake_openai.fail_next("400")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.post(STT, {"audio": upload(wav_bytes(1.0), "a.wav"), "async": True}, format="multipart")
    assert response.status_code == 202
    job = AIJob.objects.get()
    assert job.status == "failed"
    assert job.error_code == "provider_error"
    assert not job.input_file
    assert used_units(user) == 0


def test_a_queued_job_is_claimed_once_unless_its_worker_died(
    openai_settings, fake_openai, client_a, user, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from ai_services import services

    # The commit hook that would send the task is not run: the test plays the worker itself.
    with django_capture_on_commit_callbacks(execute=False):
        client_a.post(STT, {"audio": upload(wav_bytes(1.0), "a.wav"), "async": True}, format="multipart")
    job = AIJob.objects.get()
    # Another worker has it (recently started): not ours to run.
    AIJob.objects.filter(pk=job.pk).update(
        status="processing", started_at=timezone.now(), heartbeat_at=timezone.now(), claim_token="other", attempts=1
    )
    assert services.transcription_job_process(job_id=str(job.id)) is None
    assert fake_openai.requests == []
    # That worker died long ago: the redelivered task takes the job over and finishes it.
    long_ago = timezone.now() - timedelta(hours=1)
    AIJob.objects.filter(pk=job.pk).update(started_at=long_ago, heartbeat_at=long_ago)
    done = services.transcription_job_process(job_id=str(job.id))
    assert done.status == "completed"
    assert done.output["text"] == fake_openai.state.transcript
    assert services.transcription_job_process(job_id=str(job.id)) is None
    assert used_units(user) == 1


def test_account_deletion_removes_pending_uploads_and_ai_rows(
    local_settings, client_a, user, spoken, django_capture_on_commit_callbacks
):
    from tests.conftest import PASSWORD

    with django_capture_on_commit_callbacks(execute=False):  # queued, never picked up
        client_a.post(STT, {"audio": upload(spoken["wav"], "fox.wav"), "async": True}, format="multipart")
    name = AIJob.objects.get().input_file.name
    assert default_storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.delete("/api/user/account", {"password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    assert not default_storage.exists(name)
    assert AIJob.objects.count() == 0


# --- Text-to-speech --------------------------------------------------------------------------

MAGIC = {
    "mp3": (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"),
    "wav": (b"RIFF",),
    "opus": (b"OggS",),
    "aac": (b"\xff\xf1", b"\xff\xf9"),
    "flac": (b"fLaC",),
}
MIME = {"mp3": "audio/mpeg", "wav": "audio/wav", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac"}


@pytest.mark.parametrize("fmt", ["mp3", "wav", "opus", "aac", "flac"])
def test_tts_returns_audio_with_the_right_headers(local_settings, client_a, user, fmt):
    response = client_a.post(TTS, {"text": "Hello there.", "voice": "nova", "format": fmt}, format="json")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == MIME[fmt]
    assert int(response["Content-Length"]) == len(response.content) > 1000
    assert response.content.startswith(MAGIC[fmt])
    assert "no-store" in response["Cache-Control"]
    job = AIJob.objects.get(id=response["X-AI-Job-Id"])
    assert job.type == "tts"
    assert job.status == "completed"
    assert job.units_charged == 1
    assert job.output["bytes"] == len(response.content)
    assert job.input["voice"] == "nova"
    assert used_units(user) == 1


def test_tts_defaults_match_the_seed_client(local_settings, client_a):
    # The seed's Dart client sends only text and voice.
    response = client_a.post(TTS, {"text": "Hi", "voice": "alloy"}, format="json")
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/mpeg"


def test_tts_then_stt_round_trip(local_settings, client_a):
    audio = client_a.post(TTS, {"text": SENTENCE, "format": "wav"}, format="json").content
    response = client_a.post(STT, {"audio": upload(audio, "speech.wav")}, format="multipart")
    assert wer(SENTENCE, response.json()["data"]["text"]) <= MAX_WER, response.json()["data"]["text"]


def test_tts_units_by_started_thousand_characters(openai_settings, fake_openai, client_a, user):
    response = client_a.post(TTS, {"text": "a" * 2001, "voice": "coral", "speed": 1.25}, format="json")
    assert response.status_code == 200
    assert AIJob.objects.get().units_charged == 3
    assert used_units(user) == 3
    assert fake_openai.requests_to("/audio/speech")[0].body["speed"] == 1.25


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({}, "text"),
        ({"text": 5}, "text"),
        ({"text": "x" * 4001}, "text"),
        ({"text": "hi", "voice": "darth"}, "voice"),
        ({"text": "hi", "format": "ogg"}, "format"),
        ({"text": "hi", "speed": 4.5}, "speed"),
        ({"text": "hi", "speed": 0.1}, "speed"),
        ({"text": "hi", "speed": "fast"}, "speed"),
    ],
)
def test_tts_validation(local_settings, client_a, user, payload, field):
    response = client_a.post(TTS, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert AIJob.objects.count() == 0
    assert used_units(user) == 0


def test_tts_voice_list_depends_on_the_provider(openai_settings, fake_openai, client_a):
    assert client_a.post(TTS, {"text": "hi", "voice": "coral"}, format="json").status_code == 200
    assert client_a.post(TTS, {"text": "hi", "voice": "darth"}, format="json").status_code == 400


def test_tts_quota_exhausted(local_settings, client_a, user):
    quota_limit_set(account=quota_account_get(user=user), limit=0)
    response = client_a.post(TTS, {"text": "hi"}, format="json")
    assert response.status_code == 429
    assert response.json()["code"] == "quota_exceeded"


def test_tts_no_token(local_settings, api):
    assert api.post(TTS, {"text": "hi"}, format="json").status_code == 401


def test_tts_provider_error_is_502_and_refunded(openai_settings, fake_openai, client_a, user):
    fake_openai.fail_next("500", "500", "500")
    response = client_a.post(TTS, {"text": "hi"}, format="json")
    assert response.status_code == 502
    assert AIJob.objects.get().status == "failed"
    assert used_units(user) == 0


def test_speech_endpoints_are_rate_limited_as_ai(local_settings, client_a, real_rate_limits):
    burst = real_rate_limits["ai"]["burst"][0]
    codes = [client_a.post(TTS, {"text": ""}, format="json").status_code for _ in range(burst)]
    assert codes == [400] * burst
    response = client_a.post(STT, {"audio": upload(b"x", "a.wav")}, format="multipart")
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
