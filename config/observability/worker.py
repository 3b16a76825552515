"""A small HTTP endpoint inside each Celery worker: `/metrics` for Prometheus, `/health` for Docker.

Task counters are recorded in the pool processes; with `PROMETHEUS_MULTIPROC_DIR` set they are
summed from that folder, so the worker's main process can serve them all. `/health` answers 200
while this worker's heartbeat thread is writing, 503 once its last beat is stale.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from config.observability.heartbeat import HeartbeatThread
from core import metrics

logger = logging.getLogger(__name__)


class _WorkerHandler(BaseHTTPRequestHandler):
    heartbeat: HeartbeatThread | None = None

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/health":
            fresh = self.heartbeat is not None and self.heartbeat.is_fresh()
            self._send(200 if fresh else 503, b"ok\n" if fresh else b"heartbeat stale\n", "text/plain")
        elif path == "/metrics":
            if not metrics.metrics_access_allowed(
                remote_addr=self.client_address[0], authorization=self.headers.get("Authorization")
            ):
                self._send(403, b"Forbidden\n", "text/plain")
                return
            # Counters only: queue depth and quota gauges come from the web's /metrics, once.
            self._send(200, metrics.render_metrics(scrape_time_gauges=False), CONTENT_TYPE_LATEST)
        else:
            self._send(404, b"Not found\n", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("worker metrics %s %s", self.address_string(), format % args)


def worker_server_start(*, address: str, port: int, heartbeat: HeartbeatThread | None) -> ThreadingHTTPServer:
    handler = type("WorkerHandler", (_WorkerHandler,), {"heartbeat": heartbeat})
    server = ThreadingHTTPServer((address, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    logger.info("Worker metrics and health on http://%s:%s/", address, server.server_address[1])
    return server
