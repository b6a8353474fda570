"""The forward-auth deployment of README ("Put minisession in front of your backend"), run:
Debian's nginx with deploy/nginx-forward-auth.conf (the file README shows) asks a real
``minisession serve`` about each request (``auth_request`` to ``/auth``) before passing it to
an upstream started here, which echoes the headers it receives.

The client behaves as a mini-program does (``wx.request`` keeps no cookies): it logs in through
nginx and then sends only ``X-Session``.
"""

import contextlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from devtools.nginx import FORWARD_AUTH_SITE as SITE
from devtools.nginx import Nginx, forward_auth_site, free_port, nginx_binary
from devtools.processes import ROOT, SECRET, ServerProcess, server_config
from server.ids import SessionIdSigner

README = ROOT / "README.md"
ADMIN_KEY = "admin-key-for-the-forward-auth-test-0123456789"
IDENTITY = ("x-auth-request-user", "x-auth-request-app", "x-auth-request-user-id",
            "x-auth-request-unionid")


class Upstream:
    """The app's backend, unchanged: it answers every request with what it received (method,
    path, headers, body size) as JSON; ``/private`` is its own 401, ``/broken`` its own 500."""

    def __init__(self):
        self.requests: list[dict] = []
        upstream = self

        class Echo(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as nginx's upstream keepalive wants

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = {"method": self.command, "path": self.path, "body_bytes": len(body),
                        "headers": [[name.lower(), value] for name, value in self.headers.items()]}
                upstream.requests.append(seen)
                status, payload = 200, json.dumps(seen).encode()
                if self.path == "/private":
                    status, payload = 401, b'{"backend":"not yours"}'
                elif self.path == "/broken":
                    status, payload = 500, b'{"backend":"broken"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

            def log_message(self, *args):  # not on the test's stderr
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def received(response: httpx.Response) -> dict:
    """The headers the upstream received (the last of each name), from its echo."""
    assert response.status_code == 200, response.text
    return dict(response.json()["headers"])


@contextlib.contextmanager
def deploy(tmp_path: Path, config: dict):
    """(nginx's URL, minisession, upstream), all on loopback, stopped after the test."""
    binary = nginx_binary()
    server = ServerProcess(config, tmp_path / "minisession").start()
    nginx = None
    with Upstream() as upstream:
        try:
            port = free_port()
            site = forward_auth_site(f"127.0.0.1:{server.port}",
                                     f"127.0.0.1:{upstream.port}", port, tmp_path)
            nginx = Nginx(binary, tmp_path, site).start(port)
            yield f"http://127.0.0.1:{port}", server, upstream
        finally:
            if nginx is not None:
                nginx.stop()
            server.stop()


@pytest.fixture
def deployment(tmp_path: Path):
    config = server_config(admin={"enabled": True, "api_keys": [ADMIN_KEY]})
    with deploy(tmp_path, config) as (url, server, upstream):
        server.wait_ready()
        yield url, server, upstream


def test_a_mini_program_reaches_the_backend_as_its_user_and_no_one_else(deployment):
    url, server, upstream = deployment
    with httpx.Client(base_url=url, timeout=10) as client:
        login = client.post("/login", json={"code": "dev:alice"})
        assert login.status_code == 200, login.text
        token = login.json()["session_id"]
        client.cookies.clear()  # wx.request keeps none: X-Session only
        session = {"X-Session": token}

        seen = received(client.get("/api/orders?page=2", headers=session))
        assert (seen["x-auth-request-user"], seen["x-auth-request-app"]) == ("alice", "default")
        # Not bound, no unionid: no header at all; and the session id stays with minisession.
        assert "x-auth-request-user-id" not in seen and "x-auth-request-unionid" not in seen
        assert "x-session" not in seen and token not in json.dumps(seen)
        assert upstream.requests[-1]["path"] == "/api/orders?page=2"

        # The session_key calls are minisession's own, like /login and /session.
        asked = len(upstream.requests)
        verify = client.post("/platform/verify", headers=session,
                             json={"rawData": "{}", "signature": "0" * 40})
        assert (verify.status_code, verify.json()["error"]) == (400, "signature_mismatch")
        assert len(upstream.requests) == asked

        # Any method, and the body goes to the backend (never to /auth).
        posted = client.post("/api/orders", headers=session, content=b"x" * 100_000)
        assert posted.json()["method"] == "POST" and posted.json()["body_bytes"] == 100_000
        assert received(posted)["x-auth-request-user"] == "alice"
        for method in ("PUT", "DELETE", "PATCH"):
            answer = client.request(method, "/api/orders/7", headers=session)
            assert received(answer)["x-auth-request-user"] == "alice", method

        # A client cannot pass for someone else: its own X-Auth-Request-* never get through.
        forged = {"X-Auth-Request-User": "admin", "X-Auth-Request-App": "back-office",
                  "X-Auth-Request-User-Id": "1", "X-Auth-Request-Unionid": "union-admin",
                  "X-Auth-Request-Email": "admin@example.com",
                  "X-Auth-Request-Groups": "admins"}
        seen = received(client.get("/api/orders", headers={**session, **forged}))
        assert (seen["x-auth-request-user"], seen["x-auth-request-app"]) == ("alice", "default")
        assert not {"x-auth-request-user-id", "x-auth-request-unionid", "x-auth-request-email",
                    "x-auth-request-groups"} & set(seen)
        assert "admin" not in json.dumps(seen)

        # Without a session, with a forged one, or with the forged identity headers alone:
        # minisession's 401 JSON, and the backend never sees the request.
        before = len(upstream.requests)
        for headers, code in (({}, "no_session"), (forged, "no_session"),
                              ({"X-Session": token[:-2] + "xx"}, "invalid_session"),
                              ({**forged, "X-Session": "nope"}, "invalid_session")):
            for method in ("GET", "POST"):
                refused = client.request(method, "/api/orders", headers=headers)
                assert refused.status_code == 401, (headers, refused.text)
                assert refused.headers["content-type"].startswith("application/json")
                assert refused.json()["error"] == code and refused.json()["message"]
                assert "set-cookie" not in refused.headers
        assert len(upstream.requests) == before

        # The backend's own 401 and 500 are its own, not minisession's.
        private = client.get("/private", headers=session)
        assert (private.status_code, private.json()) == (401, {"backend": "not yours"})
        broken = client.get("/broken", headers=session)
        assert (broken.status_code, broken.json()) == (500, {"backend": "broken"})

        # A bound user: the backend learns its own user id (percent-encoded where a header
        # cannot carry it as it is).
        for user_id, sent in (("1001", "1001"), ("李雷 #7", "%E6%9D%8E%E9%9B%B7%20#7")):
            bound = httpx.put(f"{server.url}/admin/bindings/alice", json={"user_id": user_id},
                              headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
            assert bound.status_code == 200, bound.text
            seen = received(client.get("/api/me", headers=session))
            assert seen["x-auth-request-user-id"] == sent and unquote(sent) == user_id

        # Logged out, the id lets no one through any more.
        assert client.delete("/session", headers=session).status_code == 204
        after = client.get("/api/orders", headers=session)
        assert after.status_code == 401 and after.json()["error"] in (
            "invalid_session", "session_expired")
        assert len(upstream.requests) == before + 4


def test_a_store_outage_reaches_the_mini_program_as_minisessions_503(tmp_path):
    """nginx makes an auth answer other than 2xx, 401 and 403 a bare 500: the site asks again
    for minisession's own answer, which clients read as "try again", not "log in again"."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # closed once the block ends: nothing listens there
        closed = sock.getsockname()[1]
    config = server_config(store_uri=f"mongodb://127.0.0.1:{closed}/")
    config["store"]["timeout"] = 0.5
    _, token = SessionIdSigner([SECRET]).new_token()  # well signed: the store is asked
    with deploy(tmp_path, config) as (url, _server, upstream):
        response = httpx.get(f"{url}/api/orders", headers={"X-Session": token}, timeout=10)
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "store_unavailable"
        assert response.headers["retry-after"]
        assert upstream.requests == []


def test_readme_shows_the_tested_nginx_site_verbatim():
    assert SITE.read_text() in README.read_text(), (
        "README's 'Put minisession in front of your backend' must show "
        "deploy/nginx-forward-auth.conf as it is")
