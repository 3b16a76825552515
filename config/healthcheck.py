"""Container health check: `python -m config.healthcheck [URL]` exits 0 when the URL answers 200.

Standard library only (no curl in the image, no Django start-up on every probe). The default URL
is the web process's `/health` on `PORT`; the worker's compose health check passes its own
`/health` on `WORKER_METRICS_PORT`.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health"
    if not url.startswith(("http://", "https://")):
        print(f"unhealthy: not an http(s) URL: {url}", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(url, timeout=float(os.environ.get("HEALTHCHECK_TIMEOUT", "5"))) as response:  # noqa: S310  (scheme checked above)
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {url} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
