"""A backend that echoes what it receives, for the gateway tests and bench/gateway.py, run as its
own process: ``python -m devtools.echo_backend``.

It prints ``listening on http://127.0.0.1:<port>`` and serves:

- any path not ending as below: an echo of what it received, as JSON (method, path, query, headers as a
  list of pairs, body in base64);
- ``/download?size=N``: N bytes, streamed in 64 KiB pieces, without reading them from memory;
- ``/upload``: the body read as a stream; answers its size and SHA-256;
- ``/slow?seconds=S``: answers after S seconds;
- ``/status/<code>``: that status, with a body and a header of its own;
- ``/redirect``: 302 to ``/elsewhere?x=1``;
- ``/cookies``: two Set-Cookie headers (one with a comma in Expires);
- ``/hop``: an answer with hop-by-hop headers (one named by ``Connection``);
- ``/ws``: a WebSocket that first sends the handshake headers it got (JSON), then echoes text
  and binary; ``close <code> <reason>`` makes it close with that code; ``/closes`` lists the
  (code, reason) of each socket its client closed.
"""

import asyncio
import base64
import hashlib
import json
import sys

import tornado.web
import tornado.websocket
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

PIECE = 64 * 1024


class Echo(tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

    def _echo(self, *args):
        request = self.request
        self.set_header("Content-Type", "application/json")
        self.set_header("X-Upstream", "echo")
        self.finish(json.dumps({
            "method": request.method, "uri": request.uri, "path": request.path,
            "query": request.query, "headers": list(request.headers.get_all()),
            "body": base64.b64encode(request.body).decode()}))

    get = head = post = put = patch = delete = options = _echo


class Download(tornado.web.RequestHandler):
    def head(self):
        self.set_header("Content-Length", self.get_argument("size"))

    async def get(self):
        size = int(self.get_argument("size"))
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(size))
        piece = bytes(range(256)) * (PIECE // 256)
        sent = 0
        while sent < size:
            part = piece[:min(PIECE, size - sent)]
            self.write(part)
            await self.flush()
            sent += len(part)


@tornado.web.stream_request_body
class Upload(tornado.web.RequestHandler):
    def prepare(self):
        self.request.connection.set_max_body_size(1 << 30)
        self.size, self.digest = 0, hashlib.sha256()

    def data_received(self, chunk):
        self.size += len(chunk)
        self.digest.update(chunk)

    def put(self):
        self.finish({"size": self.size, "sha256": self.digest.hexdigest()})

    post = put


class Slow(tornado.web.RequestHandler):
    async def get(self):
        await asyncio.sleep(float(self.get_argument("seconds")))
        self.finish({"slow": True})


class Status(tornado.web.RequestHandler):
    def _answer(self, code):
        self.set_status(int(code))
        self.set_header("X-Upstream-Error", "yes")
        self.set_header("Content-Type", "text/plain")
        self.finish(f"upstream says {code}")

    get = post = _answer


class Redirect(tornado.web.RequestHandler):
    def get(self):
        self.redirect("/elsewhere?x=1")


class Cookies(tornado.web.RequestHandler):
    def get(self):
        self.add_header("Set-Cookie", "a=1; Path=/")
        self.add_header("Set-Cookie", "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/")
        self.finish("cookies")


class Hop(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Connection", "X-Hop")
        self.set_header("X-Hop", "private to this connection")
        self.set_header("Keep-Alive", "timeout=5")
        self.set_header("X-End-To-End", "kept")
        self.finish("hop")


#: (code, reason) of each WebSocket closed by its client, for /closes.
CLOSES = []


class Closes(tornado.web.RequestHandler):
    def get(self):
        self.finish(json.dumps(CLOSES))


class Socket(tornado.websocket.WebSocketHandler):
    def check_origin(self, origin):
        return True  # any page's: whether to allow it is the proxy's call, tested there

    def select_subprotocol(self, subprotocols):
        return subprotocols[0] if subprotocols else None

    def open(self):
        self.write_message(json.dumps({"headers": list(self.request.headers.get_all()),
                                       "uri": self.request.uri}))

    def on_message(self, message):
        if isinstance(message, str) and message.startswith("close "):
            _, code, reason = message.split(" ", 2)
            self.close(int(code), reason)
            return
        self.write_message(message, binary=isinstance(message, bytes))

    def on_close(self):
        CLOSES.append((self.close_code, self.close_reason))


def make_app():
    return tornado.web.Application([
        # Under any prefix: /api/download as /download.
        (r".*/download", Download), (r".*/upload", Upload), (r".*/slow", Slow),
        (r".*/status/(\d+)", Status), (r".*/redirect", Redirect), (r".*/cookies", Cookies),
        (r".*/hop", Hop), (r".*/ws", Socket), (r".*/closes", Closes), (r".*", Echo),
    ])


async def main():
    sockets = bind_sockets(0, "127.0.0.1")
    HTTPServer(make_app(), max_body_size=1 << 30).add_sockets(sockets)
    print(f"listening on http://127.0.0.1:{sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
