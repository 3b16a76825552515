"""An independent tus client process (tuspy) for tests/video/test_resumable_client.py.

    python tus_uploader.py ENDPOINT TOKEN FILE CHUNK URL_FILE (start|resume) [OPTIONS_JSON]

`start` creates the upload, writes its URL to URL_FILE, prints the offset and waits for a line on
stdin before each chunk (so the test decides when to kill it, between two chunks);
`resume` reads the URL back and sends the rest without stopping, as an app does after a restart.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tusclient import client


def main() -> None:
    endpoint, token, path, chunk, url_file, mode = sys.argv[1:7]
    options = json.loads(sys.argv[7]) if len(sys.argv) > 7 else {}
    tus = client.TusClient(endpoint, headers={"Authorization": f"Bearer {token}"})
    url = Path(url_file).read_text().strip() if mode == "resume" else None
    metadata = {"filename": Path(path).name, "filetype": "video/mp4", **options}
    uploader = tus.uploader(file_path=path, chunk_size=int(chunk), metadata=metadata, url=url)
    if url is None:
        uploader.set_url(uploader.create_url())
        Path(url_file).write_text(uploader.url)
    while True:
        print(f"offset {uploader.offset}", flush=True)
        if uploader.offset >= uploader.get_file_size():
            break
        if mode == "start":
            sys.stdin.readline()  # the test's go-ahead for the next chunk (or a SIGKILL)
        uploader.upload_chunk()
    print("done", flush=True)


if __name__ == "__main__":
    main()
