"""The gateway's HTTP client: one pool of connections to every upstream, streaming both ways.

The request body is an async iterator (never held whole); the answer is returned with its
headers read and its body still unread, for the caller to stream on. A connection that fails
or a timeout before the answer's headers becomes :class:`UpstreamUnavailable` or
:class:`UpstreamTimeout`; a 4xx/5xx of the upstream is an answer like any other.
"""

from collections.abc import AsyncIterator
from http.cookiejar import CookieJar

import httpx

from server.config import GatewayRouteConfig
from server.errors import UpstreamTimeout, UpstreamUnavailable
from server.gateway.pool import PoolTransport


class _NoCookies(CookieJar):
    """The client's cookie jar, which keeps nothing: cookies are the client's business (or the
    session's jar), and storing every user's cookies in one shared jar would cost time and
    memory at each answer."""

    def extract_cookies(self, response, request) -> None:
        pass


class Upstreams:
    def __init__(self, max_per_origin: int, idle_timeout: float):
        self.transport = PoolTransport(max_per_origin, idle_timeout)
        # Redirects are the client's business, passed through untouched.
        self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False,
                                         cookies=_NoCookies(), transport=self.transport)

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
