"""The upstream's cookies: what goes up in ``Cookie``, what comes down in ``Set-Cookie``.

The one place the server-side cookie jar (RFC 6265, kept in the session) plugs in. Until it
does, a route with ``cookie_jar = false`` passes cookies through both ways (minus
minisession's own session cookie, which the upstream never sees), and one with
``cookie_jar = true`` passes none either way.
"""

from server.config import GatewayRouteConfig


def cookie_for_upstream(route: GatewayRouteConfig, client_cookies: list[str],
                        session_cookie_name: str) -> str | None:
    """The ``Cookie`` header to send upstream (None: none), from the client's ``Cookie`` lines."""
    if route.cookie_jar:
        return None
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
