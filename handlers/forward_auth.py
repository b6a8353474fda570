"""``/auth``: forward authentication, for a proxy that stands in front of the app's backend.

nginx ``auth_request``, Traefik ``ForwardAuth`` and Caddy ``forward_auth`` ask here about each
request they receive, with its headers. A live session (from ``X-Session`` or the cookie, as on
every endpoint, its expiry slid as by any use) is ``200`` with the identity in headers the proxy
copies into the request to its upstream; anything else is our ``401`` JSON, passed on to the
client. Never a ``Set-Cookie`` and never the session id: proxies may copy any of these headers.

Identity header values are percent-encoded UTF-8 wherever a byte is not visible ASCII, and for
``%`` and ``+`` themselves, so that an app's user id (any printable string) is always a valid
header value, and ``rawurldecode``/``urldecode``/``decodeURIComponent``/``unquote`` all give it
back; ids of visible ASCII without ``%`` or ``+`` (openids, numbers, uuids) are sent as they are.
"""

from urllib.parse import quote

from handlers.base import ApiHandler

# Visible ASCII but "%" (the escape) and "+" (a space to urldecode): sent as they are.
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "%+")


def header_value(text: str) -> str:
    """``text`` as a header value that decodes back to it (see the module's docstring)."""
    return quote(text, safe=_SAFE)


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
        for name, value in (("X-Auth-Request-User", session.openid),
                            ("X-Auth-Request-App", session.app),
                            ("X-Auth-Request-User-Id", session.user_id),
                            ("X-Auth-Request-Unionid", session.record.unionid)):
            if value is not None:
                self.set_header(name, header_value(value))
        self.finish()
