"""Captions: the worker transcribes a video's audio (offline Whisper) into WebVTT cues served at
`/api/video/jobs/{id}/captions.vtt`, billed in speech-to-text units reserved with the job.

The audio is synthesized speech (piper) with known sentence times, so the captions are judged by
word error rate and by how far each cue is from where its words are spoken, never word for word."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from quotas.models import QuotaAccount, Reservation
from quotas.pricing import units_for_speech
from tests.text_metrics import word_error_rate
from tests.video.conftest import upload, wait_terminal
from tests.video.speech_fixtures import Spoken, make_speech_video
from video.captions.webvtt import captions_vtt
from video.models import VideoCaptionCue, VideoJob

SENTENCES = [
    "The old lighthouse keeper climbed the stairs every evening.",
    "Heavy rain flooded the village market this morning.",
    "My sister bought a red bicycle for her birthday.",
    "Please remember to water the tomato plants tomorrow.",
]
TIMING_TOLERANCE = 0.5
MAX_WER = 0.10
CUE_LINE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})$")


@pytest.fixture(scope="module")
def speech_video(tmp_path_factory) -> tuple[Path, list[Spoken]]:
    path = tmp_path_factory.mktemp("speech") / "speech.mp4"
    return path, make_speech_video(path, SENTENCES)


def parse_vtt(body: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of each cue of a WebVTT file."""
    assert body.startswith("WEBVTT\n")
    cues = []
    lines = body.splitlines()
    for number, line in enumerate(lines):
        match = CUE_LINE.match(line)
        if match:
            h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(part) for part in match.groups())
            start = h1 * 3600 + m1 * 60 + s1 + ms1 / 1000
            end = h2 * 3600 + m2 * 60 + s2 + ms2 / 1000
            cues.append((start, end, lines[number + 1]))
    return cues


def assert_captions_match(cues: list[tuple[float, float, str]], spoken: list[Spoken]) -> None:
    assert cues, "no cues"
    said = " ".join(sentence.text for sentence in spoken)
    heard = " ".join(text for _start, _end, text in cues)
    assert word_error_rate([said], [heard]) <= MAX_WER, heard
    starts = [sentence.start for sentence in spoken]
    ends = [sentence.end for sentence in spoken]
    for start, end, text in cues:
        # A cue holds one sentence or several whole ones: it starts where one begins and ends where one ends.
        assert min(abs(start - s) for s in starts) <= TIMING_TOLERANCE, (start, text, spoken)
        assert min(abs(end - e) for e in ends) <= TIMING_TOLERANCE, (end, text, spoken)
        assert start < end
    # Every sentence starts a cue or lies inside one: none is missing from the timeline.
    for sentence in spoken:
        assert any(start - TIMING_TOLERANCE <= sentence.start <= end for start, end, _text in cues), sentence


def used(user) -> int:
    return QuotaAccount.objects.get(user=user).used


def test_the_worker_captions_speech_within_the_bar_and_bills_it_with_the_job(worker, client_a, user, speech_video):
    path, spoken = speech_video
    response = upload(client_a, path, extractFrames=False)
    assert response.status_code == 202, response.content
    # Whisper loads in the worker on its first job: more time than a plain job needs.
    job = wait_terminal(response.json()["data"]["id"], timeout=240)
    assert job.status == "completed", f"{job.error}\n{worker.log()}"

    captions = client_a.get(f"/api/video/jobs/{job.id}/captions.vtt", HTTP_ACCEPT="text/vtt")
    assert captions.status_code == 200, captions.content
    assert captions["Content-Type"] == "text/vtt; charset=utf-8"
    assert_captions_match(parse_vtt(captions.content.decode()), spoken)

    # Reserved with the job (5 units for the video, a started minute of speech), settled with it.
    speech_units = units_for_speech(audio_seconds=job.duration)
    assert speech_units == 1
    assert used(user) == 5 + speech_units
    video = Reservation.objects.get(pk=job.reservation_id)
    speech = Reservation.objects.get(pk=job.captions_reservation_id)
    assert (video.status, speech.status) == ("settled", "settled")
    assert (speech.service, speech.units, speech.job_id) == ("whisper", 1, str(job.id))
    assert speech.audio_seconds == pytest.approx(job.duration, abs=0.5)


def test_eager_pipeline_captions_too(process, client_a, user, speech_video):
    path, spoken = speech_video
    job = process(path, extractFrames="false")
    job.refresh_from_db()
    assert job.status == "completed", job.error
    assert job.captions is True
    body = client_a.get(f"/api/video/jobs/{job.id}/captions.vtt").content.decode()
    assert_captions_match(parse_vtt(body), spoken)


def test_captions_can_be_turned_off_and_cost_nothing(process, client_a, user, speech_video):
    path, _spoken = speech_video
    job = process(path, extractFrames="false", captions="false")
    job.refresh_from_db()
    assert job.status == "completed", job.error
    assert (job.captions, job.captions_reservation_id) == (False, None)
    response = client_a.get(f"/api/video/jobs/{job.id}/captions.vtt")
    assert response.status_code == 404
    assert response.json()["code"] == "captions_not_found"
    assert used(user) == 5


def test_a_video_without_audio_has_no_captions_and_is_not_charged_for_them(process, client_a, user, clips):
    job = process(clips["no_audio"], captions="true")
    job.refresh_from_db()
    assert job.status == "completed", job.error
    assert (job.captions, job.captions_reservation_id) == (False, None)
    assert client_a.get(f"/api/video/jobs/{job.id}/captions.vtt").status_code == 404
    assert used(user) == 5


def test_another_users_captions_are_not_found(process, auth_client, make_user, speech_video):
    path, _spoken = speech_video
    job = process(path, extractFrames="false")
    assert VideoCaptionCue.objects.filter(job=job).exists()
    other = auth_client(make_user())
    response = other.get(f"/api/video/jobs/{job.id}/captions.vtt")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    missing = other.get("/api/video/jobs/00000000-0000-0000-0000-000000000000/captions.vtt")
    assert missing.status_code == 404


def test_the_captions_option_is_validated(client_a, clips, upload_tmp):
    response = upload(client_a, clips["mp4"], captions="sometimes")
    assert response.status_code == 400
    assert "captions" in response.json()["errors"]
    assert not VideoJob.objects.exists()


def test_the_captions_are_reserved_at_upload_so_a_quota_that_cannot_pay_them_refuses(
    client_a, user, speech_video, upload_tmp
):
    from quotas.selectors import quota_account_get

    account = quota_account_get(user=user)
    QuotaAccount.objects.filter(pk=account.pk).update(used=account.limit - 5)  # the video fits, captions not
    path, _spoken = speech_video
    refused = upload(client_a, path)
    assert refused.status_code == 429, refused.content
    assert refused.json()["code"] == "quota_exceeded"
    assert not VideoJob.objects.exists()
    assert used(user) == account.limit - 5
    accepted = upload(client_a, path, captions=False)
    assert accepted.status_code == 202, accepted.content


def test_webvtt_cue_text_cannot_break_the_file():
    cue = VideoCaptionCue(index=0, start=3661.5, end=3662.25, text="a --> b\n\nc <i> & d")
    body = captions_vtt([cue])
    assert body == "WEBVTT\n\n1\n01:01:01.500 --> 01:01:02.250\na --&gt; b c &lt;i&gt; &amp; d\n"


def test_cancelling_a_job_refunds_its_captions_with_it(client_a, user, speech_video, upload_tmp):
    path, _spoken = speech_video
    response = upload(client_a, path)  # its task is never sent: the upload's transaction stays open
    assert response.status_code == 202, response.content
    job = VideoJob.objects.get(id=response.json()["data"]["id"])
    assert used(user) == 6
    assert client_a.delete(f"/api/video/jobs/{job.id}").status_code == 200
    statuses = set(Reservation.objects.filter(job_id=str(job.id)).values_list("service", "status"))
    assert statuses == {("video", "refunded"), ("whisper", "refunded")}
    assert used(user) == 0
