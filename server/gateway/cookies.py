"""The upstream's cookies: what goes up in ``Cookie``, what comes down in ``Set-Cookie``.

A route with ``cookie_jar = false`` passes cookies through both ways (minus minisession's own
session cookie, which the upstream never sees). One with ``cookie_jar = true`` keeps the
upstream's cookies in the session (:mod:`server.gateway.jars`): the upstream gets the jar's
``Cookie`` header and never the client's, the client gets none of the upstream's
``Set-Cookie``. Never the client's: the jar is then the only source of the backend's cookies,
so a client cannot plant one (another user's backend session id, a forged "role" cookie), and
the backend session is tied to the minisession session that earned it. Mini-programs send no
cookies of their own anyway (``wx.request`` keeps none).
"""

from server.config import GatewayRouteConfig


def cookie_for_upstream(route: GatewayRouteConfig, client_cookies: list[str],
                        session_cookie_name: str, jar_cookie: str | None = None) -> str | None:
    """The ``Cookie`` header to send upstream (None: none), from the client's ``Cookie`` lines,
    or with the jar, the jar's header ``jar_cookie`` alone."""
    if route.cookie_jar:
        return jar_cookie
    kept = [part.strip() for line in client_cookies for part in line.split(";")
            if part.strip() and not _names(part, session_cookie_name)]
    return "; ".join(kept) or None


def _names(part: str, name: str) -> bool:
    """Whether a ``Cookie`` part sets ``name``, read as leniently as minisession reads its own
    cookie (server/cookies.py: some clients comma-join cookies), so that the session id never
    goes upstream."""
    return any(piece.partition("=")[0].strip() == name for piece in part.split(","))


def set_cookies_for_client(route: GatewayRouteConfig, upstream_set_cookies: list[str],
                           session_cookie_name: str) -> list[str]:
    """The upstream's ``Set-Cookie`` values (each one header, never folded) that the client
    gets. One named like minisession's session cookie is dropped: it would replace it."""
    if route.cookie_jar:
        return []
    return [value for value in upstream_set_cookies
            if value.partition("=")[0].strip() != session_cookie_name]
