"""``/auth``: forward authentication, for a proxy that stands in front of the app's backend.

nginx ``auth_request``, Traefik ``ForwardAuth`` and Caddy ``forward_auth`` ask here about each
request they receive, with its headers. A live session (from ``X-Session`` or the cookie, as on
every endpoint, its expiry slid as by any use) is ``200`` with the identity in headers the proxy
copies into the request to its upstream; anything else is our ``401`` JSON, passed on to the
client. Never a ``Set-Cookie`` and never the session id: proxies may copy any of these headers.

The identity headers are those of :mod:`server.gateway.identity` (the built-in proxy sends the
same).
"""

from handlers.base import ApiHandler
from server.gateway.identity import identity_headers


class _EveryMethod(tuple):
    """Tornado answers 405 to a method not in SUPPORTED_METHODS; nginx's auth subrequest keeps
    the client's method, whichever it is (WebDAV's, PURGE...)."""

    def __contains__(self, method) -> bool:
        return True


class ForwardAuthHandler(ApiHandler):
    """``/auth``, any method: answered in ``prepare()``, before any body is read."""

    SUPPORTED_METHODS = _EveryMethod(ApiHandler.SUPPORTED_METHODS)

    async def prepare(self) -> None:
        # Not ApiHandler.prepare(): its body checks (size, framing) are for endpoints that read
        # a body. A proxy may pass on the original request's Content-Length or chunked framing
        # without the body: answered now, the body is never waited for, and the connection is
        # closed after the answer, so that body bytes are never read as a next request.
        self._check_head()
        headers = self.request.headers
        announces_body = "Transfer-Encoding" in headers or headers.get(
            "Content-Length", "0").strip() not in ("", "0")
        self._body_read = not announces_body  # errors close the connection too (write_error)
        if announces_body:
            self.set_header("Connection", "close")
        session = await self.current_session(refresh_cookie=False)
        self.clear_header("Content-Type")  # an empty answer
        for name, value in identity_headers(session):
            self.set_header(name, value)
        self.finish()
