"""A timing reverse proxy in front of the local AWS stand-in (moto), for the benchmarks only.

Point the handlers' AWS_ENDPOINT_URL at it instead of moto; it forwards every request unchanged
and writes one JSON line per request: {"startTs", "endTs", "ms", "service", "action", "status"}
(ts in epoch ms, like the runner's --events file), so bench/pipeline.py can tell the time spent
inside the emulator from the time spent in the handlers.

    .venv/bin/python bench/timing_proxy.py --upstream http://127.0.0.1:5000 --port 5001 --log emu.jsonl

The extra hop costs roughly 0.2-1 ms per request on loopback; that cost lands in the "emulator"
column. (A WSGI timing middleware inside local/moto_ext would avoid the hop: proposed in
bench/README.md.)
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"}


def _action(headers, body: bytes, path: str) -> str:
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    query = parse_qs(urlsplit(path).query)
    if "Action" in query:
        return query["Action"][0]
    if body and b"Action=" in body:
        try:
            return parse_qs(body.decode("utf-8", "replace")).get("Action", ["?"])[0]
        except ValueError:
            pass
    return path.split("?", 1)[0]


def make_server(upstream: str, port: int, log_path: str | None) -> ThreadingHTTPServer:
    up = urlsplit(upstream)
    lock = threading.Lock()
    log = open(log_path, "a", buffering=1) if log_path else None
    local = threading.local()

    class Proxy(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # one segment per answer: no Nagle/delayed-ACK stalls
        wbufsize = 64 * 1024
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args):
            pass

        def _forward(self):
            start = time.time()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=120)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
            except (http.client.HTTPException, OSError):
                conn.close()  # moto closed the keep-alive connection: retry once on a new one
                conn = local.conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=120)
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
            data = resp.read()
            end = time.time()
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in _HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            if log is not None:
                scope = _SCOPE.search(self.headers.get("Authorization", ""))
                rec = {
                    "startTs": round(start * 1000, 3),
                    "endTs": round(end * 1000, 3),
                    "ms": round((end - start) * 1000, 3),
                    "service": scope.group(1) if scope else None,
                    "action": _action(self.headers, body, self.path),
                    "status": resp.status,
                }
                with lock:
                    log.write(json.dumps(rec) + "\n")

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward

    server = ThreadingHTTPServer(("127.0.0.1", port), Proxy)
    server.daemon_threads = True
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    server = make_server(args.upstream, args.port, args.log)
    print(f"timing_proxy: http://127.0.0.1:{server.server_address[1]} -> {args.upstream}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
