"""Route matching: the longest configured prefix that a path starts with wins (the router
tries the routes in :func:`in_match_order`), and where a matched request goes upstream."""

from urllib.parse import urlsplit

from server.config import GatewayRouteConfig


def in_match_order(routes) -> list[GatewayRouteConfig]:
    """Longest prefix first, so that a first-match router gives the longest match."""
    return sorted(routes, key=lambda route: len(route.prefix), reverse=True)


def upstream_url(route: GatewayRouteConfig, uri: str, websocket: bool = False) -> str:
    """Where a request for ``uri`` (path and query, as the client sent them) goes.

    An upstream without a path gets the path unchanged; one with a path (even "/") gets it in
    place of the prefix, as nginx's ``proxy_pass`` does.
    """
    upstream = urlsplit(route.upstream)
    path = uri
    if upstream.path:
        path = upstream.path.rstrip("/") + "/" + uri[len(route.prefix):]
    scheme = upstream.scheme
    if websocket:
        scheme = {"http": "ws", "https": "wss"}[scheme]
    return f"{scheme}://{upstream.netloc}{path}"
