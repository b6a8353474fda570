"""Scenario 1: a bare Tornado handler that returns a small JSON, set up like ``minisession serve``.

Same interpreter, same Tornado, one process, the same logging set-up (level, format), and, as
issue 17 defines the ceiling, no access-log line (``--access-log`` adds minisession's): the
ceiling for a Tornado JSON endpoint on this machine, against which minisession's own work per
request is judged. The harness sends it the requests minisession gets, ``Cookie`` header and
all ("the same hand-sent cookie"); it reads none of it. ``--event-loop uvloop`` runs it on
uvloop (scenario 1u), the loop ``minisession serve`` picks by default.

    python -m bench.baseline --port 8890 [--log-level info] [--access-log] [--event-loop uvloop]
"""

import argparse
import asyncio
import json
import logging

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from server.event_loop import run

# About the size of minisession's GET /session answer.
ANSWER = json.dumps({"openid": "bench-user", "created_at": "2026-01-01T00:00:00Z",
                     "expires_at": "2026-01-01T02:00:00Z", "expires_in": 7200},
                    separators=(",", ":"))

access_log = logging.getLogger("bench.access")


class JsonHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(ANSWER)


def no_log(handler: tornado.web.RequestHandler) -> None:
    pass


def log_request(handler: tornado.web.RequestHandler) -> None:
    # The same line minisession writes for every request.
    request = handler.request
    access_log.info("%d %s %s %.1fms", handler.get_status(), request.method, request.path,
                    1000.0 * request.request_time())


async def serve(port: int, access_log: bool) -> None:
    app = tornado.web.Application([(r"/session", JsonHandler), (r"/healthz", JsonHandler)],
                                  log_function=log_request if access_log else no_log)
    http = HTTPServer(app)
    http.add_sockets(bind_sockets(port, address="127.0.0.1"))
    logging.getLogger("bench").info("baseline listening on http://127.0.0.1:%d", port)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--access-log", action="store_true",
                        help="write minisession's access line for every request")
    parser.add_argument("--event-loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run(serve(args.port, args.access_log), args.event_loop)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
