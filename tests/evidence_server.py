"""A real HTTP server on 127.0.0.1 for the evidence tests, answering in the documented shapes.

OpenRouter's GET /api/v1/generation?id=... (https://openrouter.ai/docs/api/api-reference/
generations/get-request-&-usage-metadata-for-a-generation), and the OpenAI and Anthropic admin
usage and cost reports. What it answers depends on the ID asked for, so one server serves every
scenario:

  gen-ok-N         a normal generation (N spreads the times a minute apart)
  gen-error-N      finish_reason "error", billed
  gen-zero-N       zero completion tokens, blank finish reason, billed
  gen-cancel-N     cancelled, billed
  gen-missing-N    404 every time
  gen-late-N       404 twice, then the generation (just finished)
  gen-busy-N       429 with Retry-After: 1 once, then the generation
  gen-date-N       429 with Retry-After as an HTTP date once, then the generation
  gen-flaky-N      500 once, then the generation
  gen-hang-N       answers after HANG seconds (longer than the tests' client timeouts)
  gen-malformed-N  200 with a body that is not JSON
  gen-shape-N      200 with JSON of the wrong shape
  gen-huge-N       200 with a 2 MiB body (Content-Length given)
  gen-stream-N     200 with a 2 MiB body sent chunked (no Content-Length)
  gen-formula-N    a generation whose text fields start like spreadsheet formulas
  gen-echo-N       404 whose message repeats the Authorization header (a careless server)

Every request needs ``Authorization: Bearer <key>``; a wrong key gets 401 with the key it was
given in the message, so tests can check that it is never shown. ``max_in_flight`` is the
most requests the server was answering at once.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

KEY = "test-key-Zq81xPw4Lm"  # not shaped like sk-...: only the client's own scrubbing can hide it
ADMIN_KEY = "admin-test-key-7Hd2Kq"
HANG = 1.5
BASE_TIME = 1795962600  # 2026-11-29T14:30:00Z


def generation(gen_id: str, **changes) -> dict:
    number = int(gen_id.rsplit("-", 1)[1]) if gen_id.rsplit("-", 1)[1].isdigit() else 0
    created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(BASE_TIME + 60 * number)) + ".433273+00:00"
    data = {
        "id": gen_id, "upstream_id": "chatcmpl-x", "total_cost": 0.0015, "cache_discount": None,
        "upstream_inference_cost": None, "usage": 0.0015, "created_at": created, "model": "openai/gpt-4o",
        "origin": "", "app_id": None, "is_byok": False, "streamed": True, "cancelled": False,
        "provider_name": "OpenAI", "latency": 1200, "moderation_latency": None, "generation_time": 1100,
        "finish_reason": "stop", "native_finish_reason": "stop", "tokens_prompt": 1200, "tokens_completion": 150,
        "native_tokens_prompt": 1200, "native_tokens_completion": 150, "native_tokens_completion_images": None,
        "native_tokens_reasoning": 0, "native_tokens_cached": 0, "num_media_prompt": None,
        "num_input_audio_prompt": None, "num_media_completion": None, "num_search_results": None,
        "num_fetches": None, "web_search_engine": None, "external_user": None, "api_type": "completions",
        "preset_id": None, "router": None, "service_tier": None, "provider_responses": None, "user_agent": None,
        "http_referer": None, "data_region": "global", "workspace_id": None,
    }
    data.update(changes)
    return {"data": data}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes; no 40 ms delayed-ACK stall
    server: "FakeApi"

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        server = self.server
        with server.lock:
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
            server.requests += 1
        try:
            self._answer()
        finally:
            with server.lock:
                server.in_flight -= 1

    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, document, headers: dict | None = None) -> None:
        self._send(status, json.dumps(document).encode(), headers)

    def _error(self, status: int, message: str, headers: dict | None = None) -> None:
        self._json(status, {"error": {"code": status, "message": message}}, headers)

    def _answer(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        server = self.server
        if url.path.startswith("/v1/organization") or url.path.startswith("/v1/organizations"):
            return self._admin(url.path, query)
        if url.path != "/api/v1/generation":
            return self._error(404, "Not Found")
        if self.headers.get("Authorization") != f"Bearer {server.key}":
            # a careless server that repeats what it was sent
            return self._error(401, f"Invalid credentials: {self.headers.get('Authorization')}")
        gen_id = query.get("id", [""])[0]
        with server.lock:
            server.seen[gen_id] += 1
            tries = server.seen[gen_id]
        kind = gen_id.split("-")[1] if gen_id.count("-") >= 2 else ""
        if server.delay:
            time.sleep(server.delay)
        if kind == "ok":
            return self._json(200, generation(gen_id))
        if kind == "error":
            return self._json(200, generation(gen_id, finish_reason="error", native_finish_reason="error",
                                              tokens_completion=0, total_cost=0.0031))
        if kind == "zero":
            return self._json(200, generation(gen_id, finish_reason=None, native_finish_reason=None,
                                              tokens_completion=0, total_cost=0.0042))
        if kind == "cancel":
            return self._json(200, generation(gen_id, cancelled=True, finish_reason="stop", total_cost=0.002))
        if kind == "formula":
            return self._json(200, generation(gen_id, model='=HYPERLINK("http://example.invalid","x")',
                                              provider_name="@SUM(1+1)", finish_reason="-2+3"))
        if kind == "missing":
            return self._error(404, "Resource not found")
        if kind == "late":
            return self._error(404, "Resource not found") if tries <= 2 else self._json(200, generation(gen_id))
        if kind == "busy":
            if tries == 1:
                return self._error(429, "Rate limit exceeded", {"Retry-After": "1"})
            return self._json(200, generation(gen_id))
        if kind == "date":
            if tries == 1:
                when = email.utils.formatdate(time.time() + 1, usegmt=True)
                return self._error(429, "Rate limit exceeded", {"Retry-After": when})
            return self._json(200, generation(gen_id))
        if kind == "flaky":
            return self._error(500, "Internal Server Error") if tries == 1 else self._json(200, generation(gen_id))
        if kind == "hang":
            time.sleep(HANG)
            return self._json(200, generation(gen_id))
        if kind == "malformed":
            return self._send(200, b'{"data": {"id": "' + gen_id.encode() + b'", "total_cost": 0.1')
        if kind == "shape":
            return self._json(200, {"data": [1, 2, 3]})
        if kind == "huge":
            return self._send(200, b'{"data": "' + b"x" * (2 * 1024 * 1024) + b'"}')
        if kind == "stream":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(32):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True
            return None
        if kind == "echo":
            return self._error(404, f"No generation for you, {self.headers.get('Authorization')}")
        return self._error(404, "Resource not found")

    # --- the admin usage and cost reports ---

    def _admin(self, path: str, query: dict) -> None:
        server = self.server
        openai = path.startswith("/v1/organization/")
        given = (self.headers.get("Authorization") if openai else
                 f"Bearer {self.headers.get('X-Api-Key')}")
        if given != f"Bearer {server.admin_key}":
            return self._error(401, f"bad admin key {given}")
        if not openai and self.headers.get("anthropic-version") != "2023-06-01":
            return self._error(400, "anthropic-version header required")
        with server.lock:
            server.admin_paths.append((path, {name: values for name, values in query.items()}))
        document = server.admin_pages.get((path, query.get("page", [None])[0]))
        if document is None:
            return self._error(404, f"no page for {path}")
        return self._json(200, document)


class FakeApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0
        self.seen: Counter = Counter()
        self.delay = 0.0
        self.key = KEY
        self.admin_key = ADMIN_KEY
        self.admin_pages: dict = {}
        self.admin_paths: list = []

    def handle_error(self, request, client_address) -> None:
        pass  # clients hanging up on a huge or slow reply are what some tests are about

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/v1"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def reset(self) -> None:
        with self.lock:
            self.in_flight = self.max_in_flight = self.requests = 0
            self.seen.clear()
            self.delay = 0.0
            self.admin_pages = {}
            self.admin_paths = []


def start() -> tuple[FakeApi, threading.Thread]:
    server = FakeApi()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread
