"""A minimal Lambda Runtime API (2018-06-01) on 127.0.0.1, for the benchmarks only.

It is what the Lambda service gives a function's process: the process polls
GET /2018-06-01/runtime/invocation/next, gets one event with the request headers, and POSTs the
result to /runtime/invocation/{id}/response (or /error). Both runtimes under test (the Rust
`lambda_runtime` crate and Python's awslambdaric) find it through AWS_LAMBDA_RUNTIME_API.

    api = RuntimeApi().start()            # binds a free port
    env["AWS_LAMBDA_RUNTIME_API"] = api.address
    inv = api.enqueue(b'{"...": 1}')      # the event waits, as it does for a cold start
    ... start the process ...
    inv.wait(timeout=30)                  # -> inv.outcome in {"response", "error", "init_error"}
    api.stop()

Use one RuntimeApi per process: a killed process may leave a GET /next parked in a server
thread, and a fresh server guarantees that it can never take the next process's event.
Timestamps are time.perf_counter() values taken when the request reached the server.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:{name}"


@dataclass
class Invocation:
    payload: bytes
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    enqueued: float = 0.0
    delivered: float | None = None  # GET /next answered with this event
    completed: float | None = None  # /response, /error or /init/error received
    outcome: str | None = None  # "response" | "error" | "init_error"
    body: bytes = b""
    error_type: str | None = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def json(self):
        return json.loads(self.body or b"null")


class RuntimeApi:
    def __init__(self, function_name: str = "bench", deadline_seconds: int = 300):
        self.function_name = function_name
        self.deadline_seconds = deadline_seconds
        self._pending: queue.Queue[Invocation] = queue.Queue()
        self._by_id: dict[str, Invocation] = {}
        self._in_flight: Invocation | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.first_next: float | None = None  # when the process first asked for work
        self.init_error: bytes | None = None
        self._server: ThreadingHTTPServer | None = None

    # ---- driver side ------------------------------------------------------------------------

    def start(self) -> "RuntimeApi":
        api = self

        class Handler(_Handler):
            runtime = api

        server = _QuietServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, name="runtime-api", daemon=True).start()
        return self

    @property
    def address(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def enqueue(self, payload: bytes) -> Invocation:
        inv = Invocation(payload=payload, enqueued=time.perf_counter())
        with self._lock:
            self._by_id[inv.request_id] = inv
        self._pending.put(inv)
        return inv

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        # Whatever is still waiting will never be answered.
        with self._lock:
            for inv in self._by_id.values():
                inv._done.set()

    # ---- server side ------------------------------------------------------------------------

    def _next(self) -> Invocation | None:
        now = time.perf_counter()
        with self._lock:
            if self.first_next is None:
                self.first_next = now
        while not self._stopping.is_set():
            try:
                inv = self._pending.get(timeout=0.2)
            except queue.Empty:
                continue
            inv.delivered = time.perf_counter()
            with self._lock:
                self._in_flight = inv
            return inv
        return None

    def _complete(self, request_id: str | None, outcome: str, body: bytes, error_type: str | None) -> bool:
        now = time.perf_counter()
        with self._lock:
            if request_id is None:  # init error: fails whatever is waiting
                self.init_error = body
                targets = [i for i in self._by_id.values() if i.completed is None]
            else:
                inv = self._by_id.get(request_id)
                if inv is None or inv.completed is not None:
                    return False
                targets = [inv]
        for inv in targets:
            inv.completed, inv.outcome, inv.body, inv.error_type = now, outcome, body, error_type
            inv._done.set()
        return True


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a killed process drops its parked GET /next: expected, not worth a traceback


class _Handler(BaseHTTPRequestHandler):
    runtime: RuntimeApi
    # Like Lambda's own Runtime API server (Go: TCP_NODELAY by default), answer in one segment:
    # headers and body buffered into one write, no Nagle. Otherwise a keep-alive client that
    # delays its ACKs stalls ~40 ms per request, an artifact of this stand-in, not of the runtime.
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024
    protocol_version = "HTTP/1.1"  # keep-alive, as both runtime clients expect

    def log_message(self, *_args) -> None:  # quiet
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        if self.path != f"{PREFIX}/invocation/next":
            self._reply(404, b'{"errorMessage":"not found"}')
            return
        inv = self.runtime._next()
        if inv is None:  # shutting down
            self._reply(500, b'{"errorMessage":"runtime api stopping"}')
            return
        deadline_ms = int(time.time() * 1000) + self.runtime.deadline_seconds * 1000
        self._reply(
            200,
            inv.payload,
            {
                "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN.format(name=self.runtime.function_name),
                "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0",
            },
        )

    def do_POST(self) -> None:
        body = self._body()
        path = self.path
        if path == f"{PREFIX}/init/error":
            self.runtime._complete(None, "init_error", body, self.headers.get("Lambda-Runtime-Function-Error-Type"))
            self._reply(202, b'{"status":"OK"}')
            return
        parts = path[len(PREFIX):].strip("/").split("/") if path.startswith(PREFIX) else []
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            outcome = parts[2]
            error_type = self.headers.get("Lambda-Runtime-Function-Error-Type") if outcome == "error" else None
            if self.runtime._complete(parts[1], outcome, body, error_type):
                self._reply(202, b'{"status":"OK"}')
            else:
                self._reply(400, b'{"errorMessage":"unknown or already answered request id","errorType":"InvalidRequestID"}')
            return
        self._reply(404, b'{"errorMessage":"not found"}')
