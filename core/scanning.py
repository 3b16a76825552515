"""Virus scanning of uploads with ClamAV's daemon (clamd): the one module that talks to clamd.

Every upload path calls `upload_scan()` from its validation, before anything is decoded or
stored. The upload is streamed to clamd with INSTREAM straight from where Django already holds
it (memory or its temporary file), so it is never written a second time.

The protocol client is `clamav-client` (maintained, typed; the older `clamd`/`pyclamd` packages
are unmaintained). Its errors are mapped here so the rest of the product only ever sees
`FileInfected` (400 `file_infected`) or `ScannerUnavailable` (503 `scanner_unavailable`).

Settings: `CLAMAV_ADDRESS` (empty: scanning off; `host:port`, `tcp://host:port`, or a unix socket
path / `unix:///path`), `CLAMAV_TIMEOUT_SECONDS`, and `CLAMAV_WHEN_UNAVAILABLE` (`refuse` or
`accept`: what to do with an upload while clamd does not answer).
"""

from __future__ import annotations

import logging
from typing import IO, Any

from clamav_client import clamd
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from core.exceptions import FileInfected, ScannerUnavailable
from core.metrics import record_upload_scan

logger = logging.getLogger(__name__)

REFUSE = "refuse"
ACCEPT = "accept"
# Seconds a client is told to wait before retrying while the scanner is down.
RETRY_AFTER_SECONDS = 30


class _Unavailable(Exception):
    """clamd could not be reached or did not give a verdict."""


def _client() -> clamd.ClamdNetworkSocket | None:
    address = (settings.CLAMAV_ADDRESS or "").strip()
    if not address:
        return None
    timeout = settings.CLAMAV_TIMEOUT_SECONDS
    if address.startswith("unix://"):
        return clamd.ClamdUnixSocket(path=address.removeprefix("unix://"), timeout=timeout)
    if address.startswith("/"):
        return clamd.ClamdUnixSocket(path=address, timeout=timeout)
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    return clamd.ClamdNetworkSocket(host=host.strip("[]") or "127.0.0.1", port=int(port), timeout=timeout)


def scanning_enabled() -> bool:
    return bool((settings.CLAMAV_ADDRESS or "").strip())


def _verdict(client: clamd.ClamdNetworkSocket, stream: IO[bytes]) -> str | None:
    """The signature name when clamd finds something, None when the stream is clean."""
    try:
        # The clamd stub asks for BinaryIO; instream only calls read() on it.
        result = client.instream(stream)  # type: ignore[arg-type]
    except (clamd.ClamdError, OSError, ValueError) as exc:
        # OSError: a refused connection, a reset while sending (clamd closes the socket when
        # the stream passes its StreamMaxLength) or a timeout.
        raise _Unavailable(f"{type(exc).__name__}: {exc}") from exc
    status, signature = result.get("stream", (None, None))
    if status == "OK":
        return None
    if status == "FOUND":
        return str(signature or "unknown")
    raise _Unavailable(f"unexpected clamd answer: {result!r}")


def upload_scan(upload: UploadedFile, *, kind: str, field: str) -> None:
    """Scan an upload when scanning is configured; returns when it may be kept.

    Raises `FileInfected` when clamd finds a signature, and `ScannerUnavailable` when clamd does
    not answer and `CLAMAV_WHEN_UNAVAILABLE` is `refuse`. `kind` labels logs and metrics (avatar,
    image, audio, video); `field` names the form field in the error envelope. The file position
    is back at the start afterwards."""
    client = _client()
    if client is None:
        return
    stream: Any = getattr(upload, "file", None) or upload
    stream.seek(0)
    try:
        signature = _verdict(client, stream)
    except _Unavailable as exc:
        record_upload_scan(kind=kind, result="unavailable")
        refuse = settings.CLAMAV_WHEN_UNAVAILABLE == REFUSE
        logger.warning(
            "virus scanner unavailable",
            extra={"upload_kind": kind, "scanner_error": str(exc)[:300], "accepted": not refuse},
        )
        if refuse:
            raise ScannerUnavailable(
                "Uploads cannot be checked for viruses right now. Try again later.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            ) from None
        return
    finally:
        stream.seek(0)
    if signature is None:
        record_upload_scan(kind=kind, result="clean")
        return
    record_upload_scan(kind=kind, result="infected")
    logger.warning(
        "infected upload refused",
        extra={
            "upload_kind": kind,
            "signature": signature[:200],
            "upload_name": (upload.name or "")[:200],
            "upload_bytes": upload.size,
        },
    )
    message = f"The file was refused: the virus scanner found {signature}."
    raise FileInfected(message, errors={field: [message]})


def scanner_ping() -> bool:
    """Whether clamd answers PING (False when scanning is off)."""
    client = _client()
    if client is None:
        return False
    try:
        return client.ping() == "PONG"
    except (clamd.ClamdError, OSError):
        return False
