"""Assembling one minisession server: config -> store, login provider, session service, routes."""

import asyncio
import contextlib
import logging
import re

import tornado.web
from tornado.ioloop import PeriodicCallback

from handlers.admin import (
    AccessTokenHandler,
    BindingHandler,
    IntrospectHandler,
    RefusedAccessTokenHandler,
    SessionByHandleHandler,
    SessionsHandler,
    UnionidBindingHandler,
)
from handlers.base import NotFoundHandler, loggable_route
from handlers.forward_auth import ForwardAuthHandler
from handlers.gateway import gateway_routes
from handlers.health import HealthHandler, ReadyHandler
from handlers.openapi import OpenApiHandler, openapi_json
from handlers.admin_users import SessionKeyResetHandler, UserHandler
from handlers.platform_data import CheckHandler, DecryptHandler, PhoneHandler, VerifyHandler
from handlers.session import (
    LoginHandler,
    RotateHandler,
    SessionDataHandler,
    SessionHandler,
)
from server import metrics, platforms
from server.access_tokens import AccessTokens
from server.clock import SystemClock
from server.config import AppConfig, Config
from server.errors import StoreUnavailable
from server.gateway.jars import CookieJars
from server.gateway.upstream import Upstreams
from server.http import log_redaction, tornado_compat
from server.http.client_address import parse_networks
from server.ids import SessionIdSigner
from server.log_format import log_with_fields
from server.instrument import InstrumentedProvider, InstrumentedStore
from server.platform_calls import PlatformCalls
from server.platforms import AppCredentials, LoginProvider
from server.ratelimit import LoginRateLimits
from server.sealing import Sealer
from server.sessions import SessionPolicy, SessionService
from server.stores.base import Store

log = logging.getLogger("minisession")
access_log = logging.getLogger("minisession.access")

# While the store has never opened, how often to try again (seconds): readiness, indexes and
# the FerretDB checks then follow within seconds of MongoDB appearing, probed or not.
REOPEN_INTERVAL = 1.0

# App names: see server.config.APP_NAME (a wider pattern here, so that a bad name is a clear
# 404 unknown_app rather than the bare not_found of an unknown path).
ROUTES = [
    (r"/login", LoginHandler),
    (r"/login/([^/]+)", LoginHandler),
    (r"/session", SessionHandler),
    (r"/session/data", SessionDataHandler),
    (r"/session/rotate", RotateHandler),
    # The user data the client got from its platform, opened with the stored session_key.
    (r"/platform/decrypt", DecryptHandler),
    (r"/platform/verify", VerifyHandler),
    # The platform's calls about the session's user, with the app's access_token.
    (r"/platform/phone", PhoneHandler),
    (r"/platform/check", CheckHandler),
    # For a proxy in front of the app's backend (nginx auth_request, Traefik, Caddy).
    (r"/auth", ForwardAuthHandler),
    # For the app's backend (admin.enabled, API key required).
    (r"/introspect", IntrospectHandler),
    (r"/admin/apps/([^/]+)/bindings/([^/]+)", BindingHandler),
    (r"/admin/apps/([^/]+)/sessions", SessionsHandler),
    (r"/admin/apps/([^/]+)/users/([^/]+)", UserHandler),
    (r"/admin/apps/([^/]+)/users/([^/]+)/session_key/reset", SessionKeyResetHandler),
    (r"/admin/apps/([^/]+)/access_token", AccessTokenHandler),
    (r"/admin/apps/([^/]+)/access_token/refused", RefusedAccessTokenHandler),
    (r"/admin/unionids/([^/]+)/binding", UnionidBindingHandler),
    # The paths of the single-app versions: the default app.
    (r"/admin/bindings/([^/]+)", BindingHandler),
    (r"/admin/sessions", SessionsHandler),
    (r"/admin/sessions/([^/]+)", SessionByHandleHandler),
    (r"/healthz", HealthHandler),
    (r"/readyz", ReadyHandler),
    (r"/openapi\.json", OpenApiHandler),
]


def make_store(config: Config) -> Store:
    return InstrumentedStore(_make_store(config))  # each call timed and counted


def _make_store(config: Config) -> Store:
    if config.store.backend == "mongodb":
        # Imported here so that the memory backend never loads the MongoDB driver.
        from server.stores.mongodb import MongoStore, mongodb_client

        store = config.store
        return MongoStore(mongodb_client(store.mongodb_uri, store.timeout, store.driver),
                          store.database, store.timeout, store.read_batching)
    from server.stores.memory import MemoryStore

    return MemoryStore(max_sessions=config.store.max_sessions)


def make_providers(config: Config) -> dict[str, LoginProvider]:
    """Each app's login provider, by app name: the one place providers are built."""
    return {name: _make_provider(app) for name, app in config.apps.items()}


def _make_provider(app: AppConfig) -> LoginProvider:
    credentials = AppCredentials(
        name=app.name, platform=app.platform, appid=app.appid or "", secret=app.secret or "",
        api_base=app.api_base or "", timeout=app.timeout, private_key_pem=app.private_key_pem,
        platform_public_key_pem=app.platform_public_key_pem)
    return InstrumentedProvider(platforms.make_provider(credentials))  # calls timed, counted


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Access log of the route, never of what the client put in the URL.

    No query string (``GET /login?code=`` must not log the code), and no path the client
    chose: an unknown path is logged as ``(no route)`` (a client may have pasted its id in
    it), and the arguments of a route are left out (``/admin/bindings/{}``: an openid).
    """
    request = handler.request
    status = handler.get_status()
    level = logging.INFO if status < 500 else logging.WARNING
    seconds = request.request_time()
    route, duration_ms = loggable_route(handler), round(1000.0 * seconds, 1)
    # The app the request was for, once known to be one we serve (a configured name, never
    # what a client typed); never the openid.
    app = getattr(handler, "log_app", None)
    # The same facts as fields, for [log] format = "json" (server/log_format.py keeps only the
    # fields it lists).
    method = metrics.known_method(request.method)  # not a token the client made up
    fields = {"method": method, "path": route, "status": status, "duration_ms": duration_ms}
    if app:
        fields["app"] = app
    log_with_fields(access_log, level, fields, "%d %s %s %.1fms%s", status, method,
                    route, duration_ms, f" app={app}" if app else "")
    metrics.observe_request(method, route, status, seconds)


def route_templates(routes) -> dict:
    """Each route that takes arguments, as logged, by (handler, number of arguments):
    ``/admin/apps/([^/]+)/bindings/([^/]+)`` -> ``/admin/apps/{}/bindings/{}``."""
    return {(handler, pattern.count("(")): re.sub(r"\([^)]*\)", "{}", pattern)
            for pattern, handler, *_ in routes if isinstance(pattern, str) and "(" in pattern}


class Minisession:
    """One server instance. ``start()`` before serving, ``stop()`` after."""

    def __init__(self, config: Config, *, clock=None, store: Store | None = None,
                 providers: dict[str, LoginProvider] | None = None, extra_routes=()):
        """``extra_routes``: your own ``(pattern, handler)`` pairs, served beside ours; see
        :class:`handlers.extend.SessionRequestHandler`."""
        # Here, not in the command: a server embedded in another program needs these as much.
        tornado_compat.require_tested_tornado()
        log_redaction.install()
        self.config = config
        self.clock = clock or SystemClock()
        self.store = store or make_store(config)
        self.providers = providers or make_providers(config)
        s = config.session
        policy = SessionPolicy(
            idle_timeout=s.idle_timeout, max_lifetime=s.max_lifetime, touch_after=s.touch_after,
            login_reuse_window=s.login_reuse_window, data_max_bytes=s.data_max_bytes,
            data_max_values=s.data_max_values, session_key_grace=s.session_key_grace,
        )
        sealer = Sealer(config.store.encryption_keys)
        # Each app's one access_token: service.access_tokens.current(app) / .call(app, request).
        access_tokens = AccessTokens(self.store, self.providers, self.clock, sealer,
                                     config.access_token.lease_time,
                                     config.access_token.refresh_margin)
        self.service = SessionService(self.store, self.store, SessionIdSigner(s.secrets),
                                      self.providers,
                                      self.clock, policy, sealer,
                                      default_app=config.login.default_app,
                                      access_tokens=access_tokens)
        self.platform_calls = PlatformCalls(self.service)
        self.login_limits = LoginRateLimits(config.login.rate_per_address,
                                            config.login.rate_overall, self.clock,
                                            config.login.rate_ipv4_prefix,
                                            config.login.rate_ipv6_prefix)
        self.trusted_proxies = parse_networks(config.server.trusted_proxies)
        openapi_json()  # converted at start-up: a broken document stops the start, not a request
        # The gateway's routes come after ours: minisession's own paths always win.
        gateway, gateway_templates = gateway_routes(config.gateway.routes)
        self.upstreams = Upstreams(config.gateway.max_upstream_connections,
                                   config.gateway.upstream_idle_timeout) if gateway else None
        self.jars = CookieJars(self.store, self.clock)
        self.application = tornado.web.Application(
            [*extra_routes, *ROUTES, *gateway], default_handler_class=NotFoundHandler,
            log_function=log_request,
            route_templates={**route_templates([*extra_routes, *ROUTES]), **gateway_templates},
        )
        self.application.ctx = self
        self._maintenance: PeriodicCallback | None = None
        self._store_open = False
        self._store_warned = False
        self._opener: asyncio.Task | None = None

    @property
    def store_ready(self) -> bool:
        """True once the store has been opened (indexes in place)."""
        return self._store_open

    async def start(self) -> None:
        """Open the store (a store that is down is retried in the background, not fatal)."""
        if not await self._open_store():
            self._opener = asyncio.ensure_future(self._open_in_background())
        self._maintenance = PeriodicCallback(
            self._maintain, self.config.store.purge_interval * 1000, jitter=0.1)
        self._maintenance.start()

    async def _open_store(self) -> bool:
        try:
            await self.store.open()
        except StoreUnavailable:
            if not self._store_warned:  # once, not on every retry and readiness probe
                self._store_warned = True
                log.warning("session store unreachable at start-up; not ready, retrying")
            return False
        if not self._store_open:
            self._store_open = True
            if self._store_warned:
                log.info("session store reachable: ready")
        return True

    async def _open_in_background(self) -> None:
        while not await self._open_store():
            await asyncio.sleep(REOPEN_INTERVAL)

    async def _maintain(self) -> None:
        if not await self._open_store() or not self.store.needs_purge:
            return
        try:
            purged = await self.store.purge_expired(self.clock.now())
        except StoreUnavailable:
            return
        if purged:
            log.info("purged %d expired sessions", purged)
            metrics.count_expired("purged", purged)

    async def ping_store(self) -> None:
        """Raise StoreUnavailable unless the store is open and answering."""
        if not await self._open_store():
            raise StoreUnavailable()
        await self.store.ping()

    async def stop(self) -> None:
        if self._maintenance is not None:
            self._maintenance.stop()
        if self._opener is not None:
            # Wait for it, so that no attempt reopens the store after it is closed below.
            self._opener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._opener
        for provider in self.providers.values():
            await provider.close()
        if self.upstreams is not None:
            await self.upstreams.close()
        await self.store.close()
