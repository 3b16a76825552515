"""A local OpenAI-compatible embeddings server on 127.0.0.1 for the `openai` provider's tests.

It answers `POST /v1/embeddings` the way the OpenAI API does (`data[i].embedding`, `index`,
`usage.prompt_tokens`), computing the vectors with the bundled all-MiniLM-L6-v2 engine, so a search
through the openai provider is as meaningful as through the local one. `fail_with` makes it answer
an error status instead; every request body is kept in `requests`.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from ai_services import tokens as cl100k
from ai_services.providers.local.minilm import get_embedder


class EmbeddingsStub:
    def __init__(self, *, dimensions: int = 384, model_echo: str | None = None) -> None:
        self.dimensions = dimensions
        self.model_echo = model_echo
        self.fail_with: int | None = None
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                stub.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                if stub.fail_with:
                    self._send(stub.fail_with, {"error": {"message": "stub failure", "type": "server_error"}})
                    return
                if self.path.rstrip("/") != "/v1/embeddings":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                vectors = stub.vectors(texts)
                self._send(
                    200,
                    {
                        "object": "list",
                        "model": stub.model_echo or body["model"],
                        "data": [
                            {"object": "embedding", "index": i, "embedding": row.tolist()}
                            for i, row in enumerate(vectors)
                        ],
                        "usage": {
                            "prompt_tokens": sum(cl100k.count_tokens_batch(texts)),
                            "total_tokens": sum(cl100k.count_tokens_batch(texts)),
                        },
                    },
                )

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def vectors(self, texts: list[str]) -> np.ndarray:
        base = get_embedder().embed(texts)
        if self.dimensions == base.shape[1]:
            return base
        # Other sizes: MiniLM's vector tiled to the size and scaled off unit length (as a server that
        # does not normalize would answer), which the service must normalize.
        reps = -(-self.dimensions // base.shape[1])
        return 3.0 * np.tile(base, reps)[:, : self.dimensions]

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> EmbeddingsStub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
