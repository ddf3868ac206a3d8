"""Launcher: patch moto, then serve moto's app behind the /_golden middleware on 127.0.0.1.

    .venv/bin/python -m local.moto_ext [--host 127.0.0.1] [--port 5000]
    .venv/bin/python local/moto_ext/server.py [--port 5000]

Only loopback hosts are accepted: this server has no authentication at all.
"""

import argparse
import os
import signal
import sys

if __package__ in (None, ""):  # run as a script: make `local.moto_ext` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto server with golden-ami-pipeline's extension")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)))
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error(f"refusing to bind {args.host}: the local stand-in binds loopback only")
    os.environ.setdefault("MOTO_PORT", str(args.port))  # moto builds some URLs from it

    from werkzeug.serving import run_simple
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication, MotoRequestHandler, create_backend_app)

    from local.moto_ext import install
    from local.moto_ext.admin import GoldenMiddleware

    install()
    app = GoldenMiddleware(DomainDispatcherApplication(create_backend_app))
    # SIGTERM -> normal exit (werkzeug only handles Ctrl-C by itself).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"moto_ext: serving on http://{args.host}:{args.port}", flush=True)
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
