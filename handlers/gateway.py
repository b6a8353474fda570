"""The gateway's routes (``[[gateway.routes]]``): requests under a prefix, proxied upstream.

The Tornado glue only; what goes where is decided in :mod:`server.gateway`. A request is
authenticated as the route says (``auth``), then its body streams up to the upstream as it
arrives (a few pieces held at most) and the answer streams back down as it comes, with the
upstream's status and headers: memory stays bounded whatever the sizes. A WebSocket upgrade on
the same prefix is authenticated alike, then relayed frame by frame to the upstream.

Each configured route gets its own handler classes (``route`` set on them), so that the access
log and the metrics name the route by its prefix, never by the path a client sent.
"""

import asyncio
import json
import logging
import re
import time

import httpx
import tornado.httpclient
import tornado.httputil
import tornado.iostream
import tornado.routing
import tornado.web
import tornado.websocket

from handlers.base import ApiHandler, session_candidates
from handlers.errors import ApiError, api_error
from server import metrics
from server.config import GatewayRouteConfig
from server.errors import (
    AppNotAllowed,
    DomainError,
    NotAuthenticated,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from server.gateway import cookies, headers, routes
from server.gateway.identity import identity_headers
from server.http import tornado_compat
from server.http.client_address import client_address

log = logging.getLogger("minisession.gateway")

#: Request body pieces (up to 64 KiB each) held between the client and the upstream.
BODY_PIECES = 4
#: WebSocket handshake headers that the upstream handshake makes for itself.
_HANDSHAKE = frozenset({"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
                        "sec-websocket-protocol", "sec-websocket-accept"})


async def authorize(ctx, route: GatewayRouteConfig, request_headers):
    """The session whose identity goes upstream, or None; raises the 401 (or 403: a session of
    another app than the route's) when the route requires one."""
    if route.auth == "none":
        return None
    try:
        session = await ctx.service.authenticate(
            session_candidates(request_headers, ctx.config.session))
    except NotAuthenticated:
        if route.auth == "required":
            raise
        return None
    if route.app is not None and session.app != route.app:
        if route.auth == "required":
            raise AppNotAllowed()
        return None
    return session


def upstream_headers(ctx, route: GatewayRouteConfig, request, session) -> list[tuple[str, str]]:
    """The headers of the request to the upstream (see :mod:`server.gateway.headers`)."""
    peer = request.remote_ip
    address = client_address(peer, request.headers.get_list("X-Forwarded-For"),
                             ctx.trusted_proxies)
    proto, host = request.protocol, request.host
    if address != peer:  # a trusted proxy before us: it knows how the client came
        proto = request.headers.get("X-Forwarded-Proto", proto)
        host = request.headers.get("X-Forwarded-Host", host)
    session_config = ctx.config.session
    jar_cookie = None
    if route.cookie_jar and session is not None:
        jar_cookie = ctx.jars.cookie_header(session, route, request.uri)
    return headers.request_headers(
        list(request.headers.get_all()), session_header=session_config.header_name,
        identity=identity_headers(session) if session else [],
        cookie=cookies.cookie_for_upstream(route, request.headers.get_list("Cookie"),
                                           session_config.cookie_name, jar_cookie),
        client_address=address, proto=proto, host=host)


def _retrieve(answer: asyncio.Future) -> None:
    """Mark an upstream failure as seen: it may go unrelayed (the client left), and asyncio
    would log it with a traceback."""
    if not answer.cancelled():
        answer.exception()


def _announces_body(request) -> bool:
    return "Transfer-Encoding" in request.headers or request.headers.get(
        "Content-Length", "0").strip() not in ("", "0")


class GatewayHandler(ApiHandler):
    """Any standard method under the route's prefix, proxied."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    route: GatewayRouteConfig  # set on each route's subclass

    _answer: asyncio.Future | None = None
    _body: asyncio.Queue | None = None
    _session = None  # the request's session, if any: its cookie jar keeps the upstream's

    def body_limit(self) -> int:
        return self.route.max_body

    async def prepare(self) -> None:
        super().prepare()  # size and framing checks
        self._session = session = await authorize(self.ctx, self.route, self.request.headers)
        if session is not None:
            self.log_app = session.app
            if session.slid:  # as every use does: the client's cookie lives on with it
                self.set_session_cookie(session.token, self.seconds_left(session))
        body = None
        if _announces_body(self.request):
            self._body = asyncio.Queue(BODY_PIECES)
            body = self._body_pieces()
        elif "Content-Length" in self.request.headers:
            body = b""
        self._sent_at = time.monotonic()
        # Sent now, so that the body streams up while it arrives.
        self._answer = asyncio.ensure_future(self.ctx.upstreams.open(
            self.route, self.request.method, routes.upstream_url(self.route, self.request.uri),
            upstream_headers(self.ctx, self.route, self.request, session), body))
        self._answer.add_done_callback(_retrieve)

    async def _body_pieces(self):
        while (piece := await self._body.get()) is not None:
            yield piece

    async def _pass_up(self, piece: bytes | None) -> None:
        """Hand a body piece (None: the end) to the upstream request, waiting while it holds
        enough already; dropped if the upstream has answered or failed meanwhile."""
        put = asyncio.ensure_future(self._body.put(piece))
        await asyncio.wait({put, self._answer}, return_when=asyncio.FIRST_COMPLETED)
        put.cancel()

    async def data_received(self, chunk: bytes) -> None:
        if tornado_compat.answer_finished(self) or self._body is None:
            return
        self._body_size += len(chunk)
        if self._body_size > self.body_limit():
            self._drop_upstream()
            error = self._too_large()
            self.send_error(error.status, exc_info=(type(error), error, None))
            return
        await self._pass_up(chunk)

    def on_connection_close(self) -> None:
        self._drop_upstream()  # the client went away: so does the upstream request

    def _drop_upstream(self) -> None:
        """The upstream's answer will not be relayed: cancel the request, or close the answer
        (its connection goes back to the pool)."""
        answer = self._answer
        if answer is None:
            return
        if not answer.done():
            answer.cancel()
        elif not answer.cancelled() and answer.exception() is None:
            asyncio.ensure_future(answer.result().aclose())

    async def _proxy(self, _rest: str) -> None:
        if self._body is not None:
            await self._pass_up(None)
        prefix = self.route.prefix
        try:
            response = await self._answer
        except asyncio.CancelledError:
            return  # the client went away (on_connection_close): nobody to answer
        except (UpstreamUnavailable, UpstreamTimeout) as error:
            metrics.observe_upstream(prefix, None, 0)
            metrics.count_upstream_error(prefix, error.code.removeprefix("upstream_"))
            raise
        metrics.observe_upstream(prefix, response.status_code, time.monotonic() - self._sent_at)
        try:
            await self._answer_with(response)
        finally:
            await response.aclose()

    async def _answer_with(self, response: httpx.Response) -> None:
        raw = [(name.decode("latin-1"), value.decode("latin-1"))
               for name, value in response.headers.raw]
        if self.route.cookie_jar and self._session is not None:
            # Kept before the client hears the answer, so that its next request carries them.
            await self.ctx.jars.keep(self._session, self.route, self.request.uri,
                                     [v for n, v in raw if n.lower() == "set-cookie"])
        self.set_status(response.status_code, response.reason_phrase or None)
        for name in ("Content-Type", "Cache-Control", "X-Content-Type-Options"):
            self.clear_header(name)  # ours, for our JSON: the upstream says what it sends
        seen = set()
        for name, value in headers.response_headers(raw):
            # set_header first: it replaces Tornado's own Date and the like.
            (self.add_header if name.lower() in seen else self.set_header)(name, value)
            seen.add(name.lower())
        for value in cookies.set_cookies_for_client(
                self.route, [v for n, v in raw if n.lower() == "set-cookie"],
                self.ctx.config.session.cookie_name):
            self.add_header("Set-Cookie", value)
        if self.request.method != "HEAD":
            try:
                async for piece in response.aiter_raw():
                    self.write(piece)
                    await self.flush()
            except httpx.HTTPError as error:
                if tornado_compat.headers_written(self):
                    # Too late for an error answer: cut the connection, so that the client
                    # sees an incomplete answer rather than a complete-looking one.
                    log.warning("upstream of %s broke off its answer", self.route.prefix)
                    self.request.connection.close()
                    return
                raise (UpstreamTimeout() if isinstance(error, httpx.TimeoutException)
                       else UpstreamUnavailable()) from None
            except tornado.iostream.StreamClosedError:
                return  # the client went away
        self.finish()

    get = head = post = put = patch = delete = options = _proxy


class _WebSocketUpgrade(tornado.routing.PathMatches):
    """The route's path, for a WebSocket upgrade request only."""

    def match(self, request):
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return None
        return super().match(request)


class GatewaySocketHandler(tornado.websocket.WebSocketHandler):
    """A WebSocket under the route's prefix: authenticated, then relayed to the upstream."""

    route: GatewayRouteConfig  # set on each route's subclass
    upstream: tornado.websocket.WebSocketClientConnection | None = None
    log_app: str | None = None

    @property
    def ctx(self):
        return self.application.ctx

    @property
    def max_message_size(self) -> int:
        return self.route.max_body

    async def prepare(self) -> None:
        try:
            session = await authorize(self.ctx, self.route, self.request.headers)
            self.log_app = session.app if session else None
            self.upstream = await self._connect_upstream(session)
        except DomainError as error:
            self._refuse(api_error(error))
        except tornado.httpclient.HTTPClientError as error:
            # The upstream refused the upgrade: its answer, as it gave it.
            response = error.response
            self.set_status(error.code)
            if response is not None and response.body:
                self.set_header("Content-Type", response.headers.get("Content-Type", ""))
                self.write(response.body)
            self.finish()

    async def _connect_upstream(self, session):
        route = self.route
        sent = [(name, value) for name, value in
                upstream_headers(self.ctx, route, self.request, session)
                if name.lower() not in _HANDSHAKE]
        request = tornado.httpclient.HTTPRequest(
            routes.upstream_url(route, self.request.uri, websocket=True),
            headers=tornado.httputil.HTTPHeaders(), connect_timeout=route.timeout,
            request_timeout=route.timeout, follow_redirects=False)
        for name, value in sent:
            request.headers.add(name, value)
        offered = [p.strip() for p in self.request.headers.get(
            "Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        started = time.monotonic()
        try:
            upstream = await tornado.websocket.websocket_connect(
                request, max_message_size=route.max_body, subprotocols=offered or None)
        except tornado.httpclient.HTTPClientError as error:
            if error.code == 599:  # Tornado's code for "no answer in time"
                metrics.count_upstream_error(route.prefix, "timeout")
                raise UpstreamTimeout() from None
            metrics.observe_upstream(route.prefix, error.code, time.monotonic() - started)
            raise
        except (OSError, tornado.iostream.StreamClosedError, ValueError):
            metrics.count_upstream_error(route.prefix, "unavailable")
            raise UpstreamUnavailable() from None
        metrics.observe_upstream(route.prefix, 101, time.monotonic() - started)
        return upstream

    def _refuse(self, error: ApiError) -> None:
        self.set_status(error.status)
        for name, value in error.headers.items():
            self.set_header(name, value)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"error": error.code, "message": error.message},
                               ensure_ascii=False, separators=(",", ":")))

    def check_origin(self, origin: str) -> bool:
        # Cross-site WebSocket hijacking rides on what a browser adds by itself to a page's
        # handshake: cookies. A handshake without any (the session in X-Session, which a page
        # cannot set, or no session) is no such risk, whatever its Origin: mini-program hosts
        # may send an Origin of their own. With cookies, the origin must be this host.
        if "Cookie" not in self.request.headers:
            return True
        return super().check_origin(origin)

    def select_subprotocol(self, subprotocols):
        return self.upstream.selected_subprotocol

    async def open(self, *args) -> None:
        self._relay = asyncio.ensure_future(self._from_upstream())

    async def _from_upstream(self) -> None:
        while (message := await self.upstream.read_message()) is not None:
            try:
                await self.write_message(message, binary=isinstance(message, bytes))
            except tornado.websocket.WebSocketClosedError:
                return
        self.close(self.upstream.close_code, self.upstream.close_reason)

    async def on_message(self, message) -> None:
        try:
            await self.upstream.write_message(message, binary=isinstance(message, bytes))
        except tornado.websocket.WebSocketClosedError:
            pass  # the upstream is gone; its close reaches the client from _from_upstream

    def on_close(self) -> None:
        if self.upstream is not None:
            self.upstream.close(self.close_code, self.close_reason)

    def on_finish(self) -> None:
        # Called once the handshake answer is sent: a refused handshake (a bad Origin or
        # Sec-WebSocket-Key) leaves no upstream connection behind.
        if self.get_status() != 101 and self.upstream is not None:
            self.upstream.close()


def gateway_routes(configured) -> tuple[list, dict]:
    """Tornado rules for the configured routes, longest prefix first, and their access-log
    templates (``/api/{}``). WebSocket upgrades go to the relay, other requests to the proxy."""
    rules, templates = [], {}
    for route in routes.in_match_order(configured):
        pattern = re.escape(route.prefix) + "(.*)"
        proxy = type("GatewayHandler", (GatewayHandler,), {"route": route})
        relay = type("GatewaySocketHandler", (GatewaySocketHandler,), {"route": route})
        rules.append(tornado.routing.Rule(_WebSocketUpgrade(pattern), relay))
        rules.append(tornado.routing.Rule(tornado.routing.PathMatches(pattern), proxy))
        templates[(proxy, 1)] = templates[(relay, 1)] = route.prefix + "{}"
    return rules, templates
