"""The examples in the API docs are true.

Every operation that takes or returns JSON has examples in `/api/schema/`, and for a
representative set of endpoints the request example is sent to the real endpoint and the
answer has exactly the keys, at every depth, of the response example in the schema (and, where
the server's message does not depend on counts the test cannot pin, the same `message`).
Providers are the local OpenAI-compatible server and the offline engines; the database, Redis,
ffmpeg and Pillow are real.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from core.api.casing import OPAQUE_KEYS
from tests.ai_services.conftest import wav_bytes
from tests.ai_services.fake_openai import FakeOpenAI
from tests.conftest import PASSWORD
from tests.video.media_fixtures import make_clip

pytestmark = pytest.mark.django_db

JSON = "application/json"
MULTIPART = "multipart/form-data"
METHODS = ("get", "put", "post", "delete", "patch")


# --- The schema and its examples ----------------------------------------------------------------


def operation(schema: dict, method: str, path: str) -> dict[str, Any]:
    return schema["paths"][path][method]


def request_example(schema: dict, method: str, path: str, name: str | None = None) -> dict[str, Any]:
    content = operation(schema, method, path)["requestBody"]["content"]
    examples = (content.get(JSON) or content[MULTIPART])["examples"]
    return _pick(examples, name)["value"]


def response_example(schema: dict, method: str, path: str, status: int, name: str | None = None) -> dict[str, Any]:
    examples = operation(schema, method, path)["responses"][str(status)]["content"][JSON]["examples"]
    return _pick(examples, name)["value"]


def _pick(examples: dict[str, dict], name: str | None) -> dict[str, Any]:
    if name is None:
        return next(iter(examples.values()))
    return examples[name]


def json_operations(schema: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


# --- Comparing shapes ---------------------------------------------------------------------------


def differences(example: Any, real: Any, where: str = "") -> list[str]:
    """Where the keys of `example` and `real` differ, at any depth (a list is compared by its
    first item: the examples show one item of a kind)."""
    if isinstance(example, dict) and isinstance(real, dict):
        found = [f"{where}.{key}: only in the example" for key in example.keys() - real.keys()]
        found += [f"{where}.{key}: only in the response" for key in real.keys() - example.keys()]
        for key in example.keys() & real.keys():
            found += differences(example[key], real[key], f"{where}.{key}")
        return found
    if isinstance(example, list) and isinstance(real, list):
        if bool(example) != bool(real):
            return [f"{where}: empty in {'the response' if example else 'the example'} only"]
        return differences(example[0], real[0], f"{where}[0]") if example else []
    containers = (dict, list)
    if isinstance(example, containers) or isinstance(real, containers):
        if example is None or real is None:
            return [f"{where}: null on one side, {type(example or real).__name__} on the other"]
        return [f"{where}: {type(example).__name__} in the example, {type(real).__name__} in the response"]
    return []


def assert_matches(
    schema: dict, response, method: str, path: str, *, status: int, name: str | None = None, message: bool = True
) -> dict[str, Any]:
    """The answer has the status and the keys of the documented example (and its message)."""
    assert response.status_code == status, response.content[:2000]
    body = response.json()
    example = response_example(schema, method, path, status, name)
    problems = differences(example, body)
    assert not problems, f"{method.upper()} {path} {status}: " + "; ".join(sorted(problems))
    if message:
        assert body["message"] == example["message"], (method, path)
    return body


def multipart(example: dict[str, Any], **files: Any) -> dict[str, Any]:
    """A documented multipart body as a mobile client sends it: the example's fields (booleans as
    `true`/`false`), with real files in place of the placeholders."""
    placeholders = {key for key, value in example.items() if isinstance(value, str) and value.startswith("(binary)")}
    assert placeholders == files.keys(), placeholders
    fields = {key: str(value).lower() if isinstance(value, bool) else value for key, value in example.items()}
    return {**fields, **files}


def jpeg(name: str = "photo.jpg", size: tuple[int, int] = (96, 64)) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, (180, 120, 60)).save(buffer, format="JPEG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/jpeg")


# --- Providers and engines ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def openai_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def providers(settings, openai_server, tmp_path):
    """Chat, speech and vision on the OpenAI-compatible test server; embeddings on the offline
    MiniLM engine with this test's own vector cache."""
    from embeddings import services as embedding_services

    openai_server.reset()
    settings.OPENAI_API_KEY = "sk-test-examples-0000"
    settings.OPENAI_BASE_URL = openai_server.url
    settings.OPENAI_MAX_RETRIES = 0
    settings.OPENAI_TIMEOUT_SECONDS = 30.0  # far above what the fake takes on a loaded machine
    settings.AI_PROVIDER = "openai"
    settings.AI_PROVIDERS = {**dict.fromkeys(("chat", "transcribe", "speak", "vision"), "openai"), "embed": "local"}
    settings.EMBEDDINGS_CACHE_DIR = str(tmp_path / "vector-cache")
    yield settings
    embedding_services._caches.clear()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", seconds=3, width=320, height=240)


def seed_user(schema: dict) -> APIClient:
    """A client signed in as the seed's user, registered with the documented request."""
    client = APIClient()
    response = client.post("/api/auth/register", request_example(schema, "post", "/api/auth/register"), format="json")
    assert response.status_code == 201, response.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['data']['accessToken']}")
    client.tokens = response.json()["data"]
    return client


# --- Every JSON operation is documented with examples -------------------------------------------


def test_every_json_operation_has_request_and_response_examples(schema):
    missing = []
    for method, path, op in json_operations(schema):
        content = (op.get("requestBody") or {}).get("content", {})
        body = content.get(JSON) or content.get(MULTIPART)
        if body is not None and not body.get("examples"):
            missing.append(f"{method.upper()} {path}: request")
        for status, response in op["responses"].items():
            answer = (response.get("content") or {}).get(JSON)
            if status.startswith("2") and answer is not None and not answer.get("examples"):
                missing.append(f"{method.upper()} {path}: {status} response")
    assert not missing, "operations without examples:\n" + "\n".join(missing)


def test_success_examples_are_whole_envelopes_in_the_wire_format(schema):
    for method, path, op in json_operations(schema):
        for status, response in op["responses"].items():
            for example in (response.get("content") or {}).get(JSON, {}).get("examples", {}).values():
                value = example["value"]
                if status.startswith("2"):
                    assert value.keys() == {"success", "message", "data", "meta"}, (method, path, status)
                    assert value["success"] is True
                    assert value["message"]
                else:
                    assert value["success"] is False, (method, path, status)
                    assert value["code"], (method, path, status)
                assert not snake_keys(value), (method, path, status, snake_keys(value))
        for body in (op.get("requestBody") or {}).get("content", {}).values():
            for example in body.get("examples", {}).values():
                assert not snake_keys(example["value"]), (method, path, snake_keys(example["value"]))


def snake_keys(value: Any) -> list[str]:
    """Keys that are not camelCase (the user's own JSON under `metadata`/`filter` excepted)."""
    if isinstance(value, dict):
        found = [key for key in value if "_" in key]
        for key, inner in value.items():
            if key not in OPAQUE_KEYS:
                found += snake_keys(inner)
        return found
    if isinstance(value, list):
        return [key for item in value for key in snake_keys(item)]
    return []


def test_paged_examples_carry_the_pagination_meta(schema):
    body = response_example(schema, "get", "/api/ai/jobs", 200)
    assert isinstance(body["data"], list)
    assert body["meta"] == {"pagination": {"page": 1, "limit": 20, "total": len(body["data"]), "pages": 1}}
    parameters = {p["name"] for p in operation(schema, "get", "/api/ai/jobs")["parameters"]}
    assert {"page", "limit"} <= parameters


# --- Accounts -----------------------------------------------------------------------------------


def test_auth_examples_match_the_real_answers(schema, api):
    register = request_example(schema, "post", "/api/auth/register")
    response = api.post("/api/auth/register", register, format="json")
    assert_matches(schema, response, "post", "/api/auth/register", status=201)
    first = APIClient()
    first.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['data']['accessToken']}")

    other = APIClient()
    response = other.post("/api/auth/login", request_example(schema, "post", "/api/auth/login"), format="json")
    second = assert_matches(schema, response, "post", "/api/auth/login", status=200)["data"]

    assert_matches(schema, first.get("/api/auth/me"), "get", "/api/auth/me", status=200)

    # The documented token is a placeholder: the same body with a real one.
    refresh = request_example(schema, "post", "/api/auth/refresh")
    response = api.post("/api/auth/refresh", {**refresh, "refreshToken": second["refreshToken"]}, format="json")
    assert_matches(schema, response, "post", "/api/auth/refresh", status=200)

    assert_matches(schema, first.get("/api/auth/sessions"), "get", "/api/auth/sessions", status=200)
    response = first.delete(f"/api/auth/sessions/{second['sessionId']}")
    assert_matches(schema, response, "delete", "/api/auth/sessions/{session_id}", status=200)

    change = request_example(schema, "post", "/api/auth/change-password")
    response = first.post("/api/auth/change-password", change, format="json")
    assert_matches(schema, response, "post", "/api/auth/change-password", status=200)

    third = APIClient().post(
        "/api/auth/login", {"email": register["email"], "password": change["newPassword"]}, format="json"
    )
    assert third.status_code == 200
    logout = {
        **request_example(schema, "post", "/api/auth/logout"),
        "refreshToken": third.json()["data"]["refreshToken"],
    }
    assert_matches(schema, api.post("/api/auth/logout", logout, format="json"), "post", "/api/auth/logout", status=200)

    assert_matches(schema, first.post("/api/auth/logout-all"), "post", "/api/auth/logout-all", status=200)


def test_rate_limited_example_matches_the_real_answer(schema, api, real_rate_limits):
    login = request_example(schema, "post", "/api/auth/login")
    # The sign-in burst allows two tries in ten seconds; a window rolling over mid-loop allows two more.
    for _ in range(8):
        response = api.post("/api/auth/login", login, format="json")
        if response.status_code == 429:
            break
    body = assert_matches(schema, response, "post", "/api/auth/login", status=429, message=False)
    assert body["code"] == "rate_limited"
    assert response["Retry-After"]


def test_user_examples_match_the_real_answers(schema, auth_client, make_user):
    client = seed_user(schema)
    assert_matches(schema, client.get("/api/user/profile"), "get", "/api/user/profile", status=200)
    update = request_example(schema, "put", "/api/user/profile")
    assert_matches(
        schema, client.put("/api/user/profile", update, format="json"), "put", "/api/user/profile", status=200
    )
    update = request_example(schema, "patch", "/api/user/profile")
    response = client.patch("/api/user/profile", update, format="json")
    assert_matches(schema, response, "patch", "/api/user/profile", status=200)

    avatar = multipart(request_example(schema, "post", "/api/user/avatar"), avatar=jpeg())
    response = client.post("/api/user/avatar", avatar, format="multipart")
    assert_matches(schema, response, "post", "/api/user/avatar", status=200)
    assert_matches(schema, client.delete("/api/user/avatar"), "delete", "/api/user/avatar", status=200)

    assert_matches(schema, client.get("/api/user/quota"), "get", "/api/user/quota", status=200)
    assert_matches(schema, client.get("/api/user/usage-stats"), "get", "/api/user/usage-stats", status=200)

    confirm = request_example(schema, "post", "/api/user/deactivate")
    response = client.post("/api/user/deactivate", confirm, format="json")
    assert_matches(schema, response, "post", "/api/user/deactivate", status=200)

    # The body of this DELETE is not in the schema (OpenAPI tools drop DELETE bodies).
    doomed = auth_client(make_user())
    response = doomed.delete("/api/user/account", {"password": PASSWORD}, format="json")
    assert_matches(schema, response, "delete", "/api/user/account", status=200)


def test_avatar_error_examples_match_the_real_answers(schema):
    client = seed_user(schema)
    not_image = SimpleUploadedFile("notes.jpg", b"plain text, not a picture", content_type="image/jpeg")
    response = client.post("/api/user/avatar", {"avatar": not_image}, format="multipart")
    body = assert_matches(schema, response, "post", "/api/user/avatar", status=415, message=False)
    assert body["code"] == response_example(schema, "post", "/api/user/avatar", 415)["code"]


# --- AI services --------------------------------------------------------------------------------


def test_ai_examples_match_the_real_answers(schema, providers, auth_client):
    client = auth_client()
    response = client.post("/api/ai/chat", request_example(schema, "post", "/api/ai/chat"), format="json")
    chat = assert_matches(schema, response, "post", "/api/ai/chat", status=200)["data"]

    # The chat job is the only job yet: the list and the detail show the documented chat job.
    assert_matches(schema, client.get("/api/ai/jobs"), "get", "/api/ai/jobs", status=200)
    response = client.get(f"/api/ai/jobs/{chat['jobId']}")
    assert_matches(schema, response, "get", "/api/ai/jobs/{job_id}", status=200)

    conversation = f"/api/ai/conversations/{chat['conversationId']}"
    documented = "/api/ai/conversations/{conversation_id}"
    assert_matches(schema, client.get("/api/ai/conversations"), "get", "/api/ai/conversations", status=200)
    assert_matches(schema, client.get(conversation), "get", documented, status=200)
    rename = request_example(schema, "patch", documented)
    assert_matches(schema, client.patch(conversation, rename, format="json"), "patch", documented, status=200)

    follow_up = request_example(schema, "post", "/api/ai/chat", "ContinueAConversation")
    response = client.post("/api/ai/chat", {**follow_up, "conversationId": chat["conversationId"]}, format="json")
    assert_matches(schema, response, "post", "/api/ai/chat", status=200)

    speak = request_example(schema, "post", "/api/ai/text-to-speech")
    response = client.post("/api/ai/text-to-speech", speak, format="json")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "audio/mpeg"
    speak = request_example(schema, "post", "/api/ai/text-to-speech", "SpeakWithOptions")
    response = client.post("/api/ai/text-to-speech", speak, format="json")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("audio/")

    stt = "/api/ai/speech-to-text"
    audio = SimpleUploadedFile("memo.wav", wav_bytes(2.0), content_type="audio/wav")
    response = client.post(stt, multipart(request_example(schema, "post", stt), audio=audio), format="multipart")
    assert_matches(schema, response, "post", stt, status=200)
    audio = SimpleUploadedFile("memo.wav", wav_bytes(2.0), content_type="audio/wav")
    queued = multipart(request_example(schema, "post", stt, "QueueATranscription"), audio=audio)
    assert_matches(schema, client.post(stt, queued, format="multipart"), "post", stt, status=202)

    image = multipart(request_example(schema, "post", "/api/ai/analyze-image"), image=jpeg())
    response = client.post("/api/ai/analyze-image", image, format="multipart")
    assert_matches(schema, response, "post", "/api/ai/analyze-image", status=200)

    assert_matches(schema, client.delete(conversation), "delete", documented, status=200)


def test_quota_exceeded_example_matches_the_real_answer(schema, providers, auth_client, user):
    from quotas.services import quota_account_ensure, quota_limit_set

    quota_limit_set(account=quota_account_ensure(user=user), limit=0)
    client = auth_client()
    response = client.post("/api/ai/chat", request_example(schema, "post", "/api/ai/chat"), format="json")
    body = assert_matches(schema, response, "post", "/api/ai/chat", status=429, name="QuotaExceeded", message=False)
    assert body["code"] == "quota_exceeded"
    assert response["Retry-After"]


# --- Video --------------------------------------------------------------------------------------


def test_video_examples_match_the_real_answers(schema, auth_client, clip, eager, django_capture_on_commit_callbacks):
    client = auth_client()
    form = request_example(schema, "post", "/api/video/upload")
    with django_capture_on_commit_callbacks(execute=True), open(clip, "rb") as video:
        response = client.post(
            "/api/video/upload", multipart(form, video=video), format="multipart", HTTP_IDEMPOTENCY_KEY="upload-1"
        )
    job = assert_matches(schema, response, "post", "/api/video/upload", status=202, name="Queued")["data"]
    with open(clip, "rb") as video:
        response = client.post(
            "/api/video/upload", multipart(form, video=video), format="multipart", HTTP_IDEMPOTENCY_KEY="upload-1"
        )
    assert_matches(schema, response, "post", "/api/video/upload", status=202, name="ReplayedUpload")

    url = f"/api/video/jobs/{job['id']}"
    # Processed in this process when the upload committed: completed, with its frames.
    assert_matches(schema, client.get(url), "get", "/api/video/jobs/{job_id}", status=200)
    assert_matches(schema, client.get("/api/video/jobs"), "get", "/api/video/jobs", status=200)

    storyboard = "/api/video/jobs/{job_id}/storyboard"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(f"{url}/storyboard")
    assert_matches(schema, response, "get", storyboard, status=202)
    assert_matches(schema, client.get(f"{url}/storyboard"), "get", storyboard, status=200)
    response = client.get(f"{url}/preview.gif")
    assert_matches(schema, response, "get", "/api/video/jobs/{job_id}/preview.gif", status=202)

    assert_matches(schema, client.delete(url), "delete", "/api/video/jobs/{job_id}", status=200)


def test_video_upload_error_examples_match_the_real_answers(schema, auth_client, clip, settings):
    client = auth_client()
    form = request_example(schema, "post", "/api/video/upload")

    picture = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(picture, format="GIF")
    gif = SimpleUploadedFile("clip.mp4", picture.getvalue(), content_type="video/mp4")
    response = client.post("/api/video/upload", multipart(form, video=gif), format="multipart")
    body = assert_matches(schema, response, "post", "/api/video/upload", status=415, message=False)
    assert body["code"] == "unsupported_video_format"

    empty = SimpleUploadedFile("clip.mp4", b"", content_type="video/mp4")
    response = client.post("/api/video/upload", multipart(form, video=empty), format="multipart")
    assert_matches(schema, response, "post", "/api/video/upload", status=400)

    settings.VIDEO_MAX_UPLOAD_BYTES = 1024
    with open(clip, "rb") as video:
        response = client.post("/api/video/upload", multipart(form, video=video), format="multipart")
    body = assert_matches(schema, response, "post", "/api/video/upload", status=413, message=False)
    assert body["code"] == "file_too_large"


# --- Embeddings ---------------------------------------------------------------------------------


def test_embeddings_examples_match_the_real_answers(schema, providers, auth_client):
    client = auth_client()
    response = client.post("/api/embeddings/create", request_example(schema, "post", "/api/embeddings/create"))
    created = assert_matches(schema, response, "post", "/api/embeddings/create", status=201)["data"]

    response = client.post("/api/embeddings/search", request_example(schema, "post", "/api/embeddings/search"))
    assert_matches(schema, response, "post", "/api/embeddings/search", status=200)
    filtered = request_example(schema, "post", "/api/embeddings/search", "SearchWithAMetadataFilter")
    response = client.post("/api/embeddings/search", filtered)
    assert_matches(schema, response, "post", "/api/embeddings/search", status=200)

    assert_matches(schema, client.get("/api/embeddings"), "get", "/api/embeddings", status=200)
    assert_matches(schema, client.get("/api/embeddings/stats"), "get", "/api/embeddings/stats", status=200)
    detail = f"/api/embeddings/{created['ids'][0]}"
    assert_matches(schema, client.get(detail), "get", "/api/embeddings/{embedding_id}", status=200)
    assert_matches(schema, client.delete(detail), "delete", "/api/embeddings/{embedding_id}", status=200)

    # Ids are the database's: the documented body with three real ones.
    ids = [
        client.post("/api/embeddings/create", {"text": f"Note number {n}."}).json()["data"]["ids"][0] for n in range(3)
    ]
    bulk = {**request_example(schema, "post", "/api/embeddings/bulk-delete"), "ids": ids}
    response = client.post("/api/embeddings/bulk-delete", bulk)
    assert_matches(schema, response, "post", "/api/embeddings/bulk-delete", status=200)

    document = client.post("/api/embeddings/create", {"text": "One more note."}).json()["data"]["documentId"]
    response = client.delete(f"/api/embeddings/documents/{document}")
    # The message counts the document's chunks, which the example does not try to match.
    assert_matches(schema, response, "delete", "/api/embeddings/documents/{document_id}", status=200, message=False)
