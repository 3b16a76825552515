"""An OpenAI-compatible HTTP server on 127.0.0.1 for tests: the real SDK talks to it end to end.

Serves /v1/chat/completions (plain and streamed as Server-Sent Events, with usage),
/v1/audio/transcriptions, /v1/audio/speech and /v1/embeddings. Every request is recorded
(path, headers, parsed body). Failures are scripted per request with `fail_next(...)`:

    "429", "500", "503", "400", "401"  an error status with an OpenAI error body
    "timeout"                          sleep `timeout_sleep` seconds before answering
    "malformed"                        200 with a body that is not JSON
    "wrong_shape"                      200 with JSON that is not the promised object
    "stream_break"                     (streams) two good chunks, then a chunk that is not JSON
    "no_usage"                         (chat) an answer without usage figures, as some servers send

Error answers carry `retry-after-ms: 10`, which the SDK honours, so retried tests stay fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import re
import struct
import threading
import time
import wave
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ERROR_MODES = {"429": 429, "500": 500, "503": 503, "400": 400, "401": 401}


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw_size: int

    @property
    def retry_count(self) -> int:
        return int(self.headers.get("x-stainless-retry-count", "0"))


@dataclass
class FakeOpenAIState:
    reply: str | None = None  # None: echo the last user message
    transcript: str = "the quick brown fox jumps over the lazy dog"
    timeout_sleep: float = 3.0
    # When set, a streamed answer stops after its first word until the gate opens (at most a
    # minute): a test acts while the answer is certainly mid-stream, with no sleeps.
    stream_gate: threading.Event | None = None
    # When set, speech requests wait for it (at most a minute) before answering: a test holds
    # calls open for as long as it needs, with no sleeps.
    speech_gate: threading.Event | None = None
    embedding_dimensions: int = 8
    script: deque = field(default_factory=deque)
    requests: list[Recorded] = field(default_factory=list)


class FakeOpenAI:
    def __init__(self) -> None:
        self.state = FakeOpenAIState()
        self.lock = threading.Lock()
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="fake-openai", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def reset(self) -> None:
        with self.lock:
            self.state = FakeOpenAIState()

    def fail_next(self, *modes: str) -> None:
        with self.lock:
            self.state.script.extend(modes)

    @property
    def requests(self) -> list[Recorded]:
        return list(self.state.requests)

    def requests_to(self, path: str) -> list[Recorded]:
        return [r for r in self.state.requests if r.path.endswith(path)]

    def next_mode(self) -> str:
        with self.lock:
            return self.state.script.popleft() if self.state.script else "ok"


def _wav_bytes(seconds: float = 0.2, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = int(seconds * rate)
        out.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 8))) for i in range(frames)))
    return buffer.getvalue()


def _multipart_fields(body: bytes, content_type: str) -> dict[str, Any]:
    match = re.search(r"boundary=([^;]+)", content_type)
    if not match:
        return {}
    boundary = match.group(1).strip('"').encode()
    fields: dict[str, Any] = {}
    for part in body.split(b"--" + boundary):
        head, _, value = part.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]+)"', head)
        if not name:
            continue
        value = value.removesuffix(b"\r\n")
        filename = re.search(rb'filename="([^"]*)"', head)
        if filename:
            fields[name.group(1).decode()] = {"filename": filename.group(1).decode(), "size": len(value)}
        else:
            fields[name.group(1).decode()] = value.decode("utf-8", "replace")
    return fields


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes: with Nagle's algorithm on, the body would wait
    # for the client's delayed ACK (~40 ms per request on Linux).
    disable_nagle_algorithm = True
    server_fake: FakeOpenAI

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    # -- plumbing ------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str = "application/json", headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: dict | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers=headers)

    def _error(self, status: int, key: str) -> None:
        messages = {
            429: "Rate limit reached for requests",
            500: "The server had an error while processing your request.",
            503: "The engine is currently overloaded, please try again later.",
            400: "This model's maximum context length is exceeded.",
            # Real servers echo (part of) the key they were given; ours echoes all of it.
            401: f"Incorrect API key provided: {key}.",
        }
        body = {"error": {"message": messages[status], "type": "error", "code": None, "param": None}}
        self._json(status, body, headers={"retry-after-ms": "10"})

    def do_POST(self) -> None:
        fake = self.server_fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("application/json"):
            try:
                body: Any = json.loads(raw or b"{}")
            except ValueError:
                body = None
        elif content_type.startswith("multipart/form-data"):
            body = _multipart_fields(raw, content_type)
        else:
            body = None
        recorded = Recorded(
            method="POST",
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            raw_size=len(raw),
        )
        with fake.lock:
            fake.state.requests.append(recorded)
        mode = fake.next_mode()
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if mode in ERROR_MODES:
            return self._error(ERROR_MODES[mode], key)
        if mode == "timeout":
            time.sleep(fake.state.timeout_sleep)
            mode = "ok"
        if mode == "malformed":
            return self._send(200, b'{"id": "chatcmpl-1", "choices": [', "application/json")
        if mode == "wrong_shape":
            return self._json(200, {"unexpected": True})

        if self.path.endswith("/chat/completions"):
            return self._chat(body or {}, mode)
        if self.path.endswith("/audio/transcriptions"):
            return self._transcription(body or {})
        if self.path.endswith("/audio/speech"):
            return self._speech(body or {})
        if self.path.endswith("/embeddings"):
            return self._embeddings(body or {})
        return self._json(404, {"error": {"message": "Unknown path", "type": "invalid_request_error"}})

    # -- endpoints -----------------------------------------------------------------------------

    def _reply_for(self, body: dict) -> tuple[str, int]:
        messages = body.get("messages") or []
        prompt_tokens = 0
        last_user: Any = ""
        for message in messages:
            content = message.get("content")
            if isinstance(content, list):
                text = " ".join(part.get("text", "") for part in content if part.get("type") == "text")
                prompt_tokens += len(text.split()) + 85  # an image costs tokens too
            else:
                text = content or ""
                prompt_tokens += len(text.split())
            if message.get("role") == "user":
                last_user = content
        fake = self.server_fake
        if fake.state.reply is not None:
            reply = fake.state.reply
        elif isinstance(last_user, list):
            reply = "I see an image."
        else:
            reply = f"Echo: {last_user}"
        return reply, prompt_tokens + 4 * len(messages)

    def _chat(self, body: dict, mode: str) -> None:
        reply, prompt_tokens = self._reply_for(body)
        model = body.get("model", "unknown")
        completion_tokens = len(reply.split())
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if not body.get("stream"):
            answer = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            }
            if mode != "no_usage":
                answer["usage"] = usage
            return self._json(200, answer)

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()

        def chunk(delta: dict, finish: str | None = None, with_usage: dict | None = None, choices: bool = True):
            data: dict[str, Any] = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else [],
            }
            if with_usage is not None:
                data["usage"] = with_usage
            return f"data: {json.dumps(data)}\n\n".encode()

        pieces = re.findall(r"\S+\s*", reply)
        try:
            self.wfile.write(chunk({"role": "assistant", "content": ""}))
            for index, piece in enumerate(pieces):
                if mode == "stream_break" and index == 2:
                    self.wfile.write(b"data: {this is not json\n\n")
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(chunk({"content": piece}))
                self.wfile.flush()
                gate = self.server_fake.state.stream_gate
                if index == 0 and gate is not None:
                    gate.wait(timeout=60)
            self.wfile.write(chunk({}, finish="stop"))
            if (body.get("stream_options") or {}).get("include_usage"):
                self.wfile.write(chunk({}, with_usage=usage, choices=False))
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def _transcription(self, fields: dict) -> None:
        text = self.server_fake.state.transcript
        if fields.get("response_format") == "verbose_json":
            return self._json(
                200,
                {
                    "task": "transcribe",
                    "language": "english",
                    "duration": 1.5,
                    "text": text,
                    "segments": [
                        {
                            "id": 0,
                            "seek": 0,
                            "start": 0.0,
                            "end": 1.5,
                            "text": f" {text}",
                            "tokens": [1, 2, 3],
                            "temperature": 0.0,
                            "avg_logprob": -0.2,
                            "compression_ratio": 1.1,
                            "no_speech_prob": 0.01,
                        }
                    ],
                },
            )
        return self._json(200, {"text": text})

    def _speech(self, body: dict) -> None:
        gate = self.server_fake.state.speech_gate
        if gate is not None:
            gate.wait(timeout=60)
        fmt = body.get("response_format", "mp3")
        if fmt == "wav":
            return self._send(200, _wav_bytes(), "audio/wav")
        types = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac"}
        payload = b"FAKE-" + fmt.encode() + b"-" + body.get("input", "").encode()[:64]
        return self._send(200, payload, types.get(fmt, "application/octet-stream"))

    def _embeddings(self, body: dict) -> None:
        inputs = body.get("input") or []
        if isinstance(inputs, str):
            inputs = [inputs]
        dims = self.server_fake.state.embedding_dimensions
        data = []
        for index, text in enumerate(inputs):
            digest = hashlib.sha256(text.encode()).digest()
            vector = [(byte - 128) / 128 for byte in digest[:dims]]
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            data.append({"object": "embedding", "index": index, "embedding": [v / norm for v in vector]})
        tokens = sum(len(text.split()) for text in inputs)
        return self._json(
            200,
            {
                "object": "list",
                "data": list(reversed(data)),  # out of order on purpose: clients must sort by index
                "model": body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )
