"""Search inside videos: caption cues and on-screen text become moments in the owner's
embeddings, found by `POST /api/video/search` (best first, with a thumbnail at the moment), never
by another user, and gone with their video. Speech is synthesized (piper) at known times."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from imageio_ffmpeg import get_ffmpeg_exe
from PIL import Image, ImageDraw, ImageFont

from embeddings.models import Embedding
from quotas.models import QuotaAccount
from tests.celery_worker import wait_for
from tests.video.conftest import upload, wait_terminal
from tests.video.speech_fixtures import Spoken, make_speech_video

GARDEN = [
    "Please remember to water the tomato plants tomorrow.",
    "Heavy rain flooded the village market this morning.",
    "The old lighthouse keeper climbed the stairs every evening.",
]
OFFICE = [
    "Our team finished the quarterly budget report yesterday.",
    "The museum opens a new dinosaur exhibit next week.",
    "Fresh bread smells wonderful in a quiet kitchen.",
]
# Paraphrases: none of the sentence's content words but one.
STORM_QUERY = "a storm left the town's marketplace under water"
FOSSIL_QUERY = "an exhibition about prehistoric reptiles is coming to the gallery"


@pytest.fixture(autouse=True)
def _own_vector_cache(settings, tmp_path):
    # The test database is made anew each run with the same ids, so vector files cached by an
    # earlier run under the instance folder would look current: each test gets its own folder.
    settings.EMBEDDINGS_CACHE_DIR = str(tmp_path / "vector-cache")


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, tuple[Path, list[Spoken]]]:
    root = tmp_path_factory.mktemp("search")
    return {
        "garden": (root / "garden.mp4", make_speech_video(root / "garden.mp4", GARDEN)),
        "office": (root / "office.mp4", make_speech_video(root / "office.mp4", OFFICE)),
    }


def search(client, **body):
    return client.post("/api/video/search", body, format="json")


def moments_of(job_id) -> int:
    return Embedding.objects.filter(document_id=job_id).count()


def test_a_paraphrase_finds_the_right_video_and_moment_through_the_worker(worker, client_a, videos):
    jobs = {}
    for name, (path, _spoken) in videos.items():
        response = upload(client_a, path, extractFrames=False)
        assert response.status_code == 202, response.content
        jobs[name] = response.json()["data"]["id"]
    for name, job_id in jobs.items():
        job = wait_terminal(job_id, timeout=240)
        assert job.status == "completed", f"{job.error}\n{worker.log()}"
        # Indexed right after the job's results commit.
        wait_for(lambda job_id=job_id: moments_of(job_id) >= 3, timeout=60, what=f"moments of {name}")

    found = search(client_a, query=STORM_QUERY, limit=5)
    assert found.status_code == 200, found.content
    moments = found.json()["data"]["moments"]
    assert moments, found.content
    assert moments[0]["jobId"] == jobs["garden"], moments
    flood = videos["garden"][1][1]
    assert abs(moments[0]["start"] - flood.start) <= 1.0, (moments[0], flood)
    assert moments[0]["origin"] == "captions"
    assert moments[0]["end"] > moments[0]["start"]
    assert [m["score"] for m in moments] == sorted((m["score"] for m in moments), reverse=True)
    thumbnail = moments[0]["thumbnailUrl"]
    assert thumbnail.endswith(f"/api/video/jobs/{jobs['garden']}/thumbnail?timestamp={moments[0]['start']:g}")
    image = client_a.get(thumbnail)
    assert image.status_code == 200
    assert image["Content-Type"] == "image/jpeg"

    fossil = search(client_a, query=FOSSIL_QUERY, limit=3).json()["data"]["moments"]
    assert fossil[0]["jobId"] == jobs["office"]
    assert abs(fossil[0]["start"] - videos["office"][1][1].start) <= 1.0

    within = search(client_a, query=STORM_QUERY, limit=5, jobId=jobs["office"]).json()["data"]["moments"]
    assert all(m["jobId"] == jobs["office"] for m in within)


def test_moments_are_private_billed_and_deleted_with_their_video(
    process, client_a, user, auth_client, make_user, videos
):
    path, spoken = videos["garden"]
    job = process(path, extractFrames="false")
    job.refresh_from_db()
    assert job.status == "completed", job.error
    assert moments_of(job.id) >= 3
    rows = Embedding.objects.filter(document_id=job.id)
    assert {row.metadata["source"] for row in rows} == {"captions"}
    assert {row.metadata["jobId"] for row in rows} == {str(job.id)}
    assert all(row.user_id == user.pk for row in rows)

    other = auth_client(make_user())
    nothing = search(other, query=STORM_QUERY)
    assert nothing.status_code == 200
    assert nothing.json()["data"]["moments"] == []
    assert search(other, query=STORM_QUERY, jobId=str(job.id)).status_code == 404

    # A search is an embedding of the query: 1 unit per started 1,000 tokens.
    before = QuotaAccount.objects.get(user=user).used
    mine = search(client_a, query=STORM_QUERY, limit=1)
    assert mine.status_code == 200
    assert len(mine.json()["data"]["moments"]) == 1
    assert abs(mine.json()["data"]["moments"][0]["start"] - spoken[1].start) <= 1.0
    assert QuotaAccount.objects.get(user=user).used == before + 1

    assert client_a.delete(f"/api/video/jobs/{job.id}").status_code == 200
    assert moments_of(job.id) == 0
    assert search(client_a, query=STORM_QUERY).json()["data"]["moments"] == []


def _text_video(path: Path, words: str, *, seconds: int = 4) -> Path:
    """A video whose every frame shows `words` in large letters (no audio)."""
    frames = path.parent / "text-frames"
    frames.mkdir(exist_ok=True)
    font = ImageFont.load_default(size=40)
    image = Image.new("RGB", (640, 360), "white")
    ImageDraw.Draw(image).text((40, 150), words, fill="black", font=font)
    image.save(frames / "frame.png")
    subprocess.run(
        [get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-loop", "1", "-i", str(frames / "frame.png"),
         "-t", str(seconds), "-r", "5", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


def test_text_shown_on_screen_is_found(process, client_a, tmp_path):
    path = _text_video(tmp_path / "slide.mp4", "Quarterly harvest festival")
    job = process(path, frameInterval="1")
    job.refresh_from_db()
    assert job.status == "completed", job.error
    moments = search(client_a, query="harvest festival", limit=3).json()["data"]["moments"]
    assert moments
    assert moments[0]["jobId"] == str(job.id), moments
    assert moments[0]["origin"] == "screen"
    assert "harvest" in moments[0]["text"].lower()
    assert moments[0]["start"] == 0.0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "query"),
        ({"query": ""}, "query"),
        ({"query": "x" * 1001}, "query"),
        ({"query": "rain", "limit": 0}, "limit"),
        ({"query": "rain", "limit": 51}, "limit"),
        ({"query": "rain", "jobId": "not-a-uuid"}, "jobId"),
    ],
)
def test_hostile_search_input_is_a_400(client_a, body, field):
    response = search(client_a, **body)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]


def test_search_needs_authentication(api):
    assert api.post("/api/video/search", {"query": "rain"}, format="json").status_code == 401
