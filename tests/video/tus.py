"""A minimal tus 1.0 client over the DRF test client, for the API-level tests of resumable uploads."""

from __future__ import annotations

import base64
from pathlib import Path

from rest_framework.test import APIClient

UPLOADS = "/api/video/uploads/"
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}
OFFSET_STREAM = "application/offset+octet-stream"


def metadata(**pairs: str) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in pairs.items())


def create(client: APIClient, length: int, *, key: str = "", **pairs: str):
    headers = {**TUS, "HTTP_UPLOAD_LENGTH": str(length), "HTTP_UPLOAD_METADATA": metadata(**pairs)}
    if key:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(UPLOADS, **headers)


def location(response) -> str:
    return response["Location"].replace("http://testserver", "")


def patch(client: APIClient, url: str, data: bytes, *, offset: int, content_type: str = OFFSET_STREAM):
    return client.generic("PATCH", url, data, content_type=content_type, HTTP_UPLOAD_OFFSET=str(offset), **TUS)


def head(client: APIClient, url: str):
    return client.head(url, **TUS)


def upload_file(client: APIClient, path: Path, *, chunk: int = 64 * 1024, **pairs: str):
    """Create and send a whole file in chunks; returns the creation answer and the last PATCH answer."""
    data = path.read_bytes()
    created = create(client, len(data), filename=path.name, **pairs)
    assert created.status_code == 201, created.content
    url = location(created)
    answer = None
    for start in range(0, len(data), chunk):
        answer = patch(client, url, data[start : start + chunk], offset=start)
        if answer.status_code != 204:
            break
    return created, answer
