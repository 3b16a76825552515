"""A real clamd (Debian's clamav-daemon) for the upload-scanning tests, with a signature database
written here: no freshclam, no download. Installed by .ci/test-packages.sh, which `make test` runs.

The database holds two body signatures (.ndb): the EICAR test string, and a test-only pattern
that can be embedded in otherwise valid images, audio and video."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CLAMD = shutil.which("clamd") or "/usr/sbin/clamd"
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
TEST_PATTERN = b"MMA-TEST-ONLY-MALWARE-PATTERN-6b1f0e2a9c"
EICAR_SIGNATURE = "Mma.Test.Eicar"
PATTERN_SIGNATURE = "Mma.Test.Pattern"
START_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Clamd:
    socket: Path
    process: subprocess.Popen


def _write_config(folder: Path) -> Path:
    database = folder / "db"
    database.mkdir()
    (database / "mma-test.ndb").write_text(
        f"{EICAR_SIGNATURE}:0:*:{EICAR.hex()}\n{PATTERN_SIGNATURE}:0:*:{TEST_PATTERN.hex()}\n"
    )
    config = folder / "clamd.conf"
    config.write_text(
        "\n".join(
            [
                "Foreground yes",
                f"LocalSocket {folder / 'clamd.sock'}",
                f"DatabaseDirectory {database}",
                f"TemporaryDirectory {folder}",
                f"LogFile {folder / 'clamd.log'}",
                # Above the largest upload the product takes (a 100 MB video).
                "StreamMaxLength 200M",
                "MaxFileSize 200M",
                "MaxScanSize 400M",
                "SelfCheck 3600",
                "",
            ]
        )
    )
    return config


def _answers_ping(socket: Path) -> bool:
    from clamav_client import clamd

    try:
        return clamd.ClamdUnixSocket(path=str(socket), timeout=2).ping() == "PONG"
    except (clamd.ClamdError, OSError):
        return False


@pytest.fixture(scope="session")
def clamd_server(tmp_path_factory) -> Iterator[Clamd]:
    if not Path(CLAMD).exists():
        pytest.skip("clamd is not installed (run .ci/test-packages.sh)")
    folder = tmp_path_factory.mktemp("clamd")
    config = _write_config(folder)
    socket = folder / "clamd.sock"
    process = subprocess.Popen(
        [CLAMD, "--config-file", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _answers_ping(socket):
            log = folder / "clamd.log"
            if process.poll() is not None:
                pytest.fail(f"clamd exited with {process.returncode}: {log.read_text() if log.exists() else ''}")
            if time.monotonic() > deadline:
                pytest.fail(f"clamd did not answer PING in {START_TIMEOUT_SECONDS:.0f} s")
            time.sleep(0.1)
        yield Clamd(socket=socket, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def clamav(settings, clamd_server) -> Clamd:
    """Scanning on, against the session's clamd, refusing uploads while it is down."""
    settings.CLAMAV_ADDRESS = str(clamd_server.socket)
    settings.CLAMAV_WHEN_UNAVAILABLE = "refuse"
    return clamd_server
