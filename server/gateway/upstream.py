"""The gateway's HTTP client: one pool of connections to every upstream, streaming both ways.

The request body is an async iterator (never held whole); the answer is returned with its
headers read and its body still unread, for the caller to stream on. A connection that fails
or a timeout before the answer's headers becomes :class:`UpstreamUnavailable` or
:class:`UpstreamTimeout`; a 4xx/5xx of the upstream is an answer like any other.
"""

from collections.abc import AsyncIterator

import httpx

from server.config import GatewayRouteConfig
from server.errors import UpstreamTimeout, UpstreamUnavailable

#: Connections kept open to upstreams, in all and idle (the pool is shared by every route).
MAX_CONNECTIONS = 200
MAX_IDLE_CONNECTIONS = 50


class Upstreams:
    def __init__(self):
        self._client = httpx.AsyncClient(
            # Redirects and cookies are the client's business, passed through untouched.
            follow_redirects=False, trust_env=False,
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS,
                                max_keepalive_connections=MAX_IDLE_CONNECTIONS))

    async def open(self, route: GatewayRouteConfig, method: str, url: str,
                   headers: list[tuple[str, str]], body: AsyncIterator[bytes] | bytes | None
                   ) -> httpx.Response:
        """The upstream's answer, its body not read yet: ``close()`` it when done."""
        # httpx.Request rather than client.build_request: no default headers are added
        # (Accept-Encoding, User-Agent...); the upstream sees the client's.
        request = httpx.Request(method, url, headers=headers, content=body,
                                extensions={"timeout": httpx.Timeout(route.timeout).as_dict()})
        try:
            return await self._client.send(request, stream=True)
        except httpx.TimeoutException:
            raise UpstreamTimeout() from None
        except httpx.HTTPError:
            raise UpstreamUnavailable() from None

    async def close(self) -> None:
        await self._client.aclose()
