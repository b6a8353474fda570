"""The one access_token of each app, shared by every process and instance using the store.

WeChat's server-to-server calls (phone numbers, checkSessionKey, resetUserSessionKey...) carry
the app's ``access_token``. A fetch may invalidate the token other holders use, so an app must
have one holder: here, the store. A token is

- cached in each process until ``refresh_margin`` seconds before it expires;
- else read from the store (sealed at rest, ``access_token`` purpose), while fresh;
- else fetched by whoever holds the app's refresh *lease* in the store (an insert of a unique
  document, expiring after ``lease_time`` so a holder that dies frees it). The holder reads the
  store again once it has the lease, since another process may have refreshed meanwhile; the
  others wait for the stored token. One refresh in flight per app, whatever the processes.

When the platform refuses the token a call carried (:class:`AccessTokenRejected`: 40001,
40014, 42001), :meth:`AccessTokens.call` expires that very token under the lease, only if it
is still the stored one (compared by fingerprint: sealed values differ each time), forces a
new one (``stable_token`` with ``force_refresh``) and runs the call once more. A second refusal
is the platform's error. Reports about a token already replaced cost nothing but a store read,
so one stale report cannot start a storm of forced refreshes. The app's backend, which makes
its own calls with the token, reports a refusal through :meth:`AccessTokens.refused` alike.

Nothing here knows Tornado or HTTP; the token never reaches a log line or an error message.
"""

import asyncio
import contextlib
import hashlib
import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from server import metrics
from server.errors import AccessTokenUnsupported, InvalidInput, StoreUnavailable, UnknownApp
from server.platforms import LoginProvider, ProviderError
from server.platforms.base import AccessTokenRejected
from server.sealing import Sealer
from server.stores.base import AppTokenStore, StoredAppToken

log = logging.getLogger("minisession.access_tokens")

T = TypeVar("T")

#: Defaults of ``[access_token]`` (server/config.py).
DEFAULT_LEASE_TIME = 15.0
DEFAULT_REFRESH_MARGIN = 120.0
#: Seconds between two looks at the store while another process holds the lease.
_POLL_INTERVAL = 0.05
#: The longest token a backend may report refused (WeChat's are under 512 characters).
MAX_REPORTED_TOKEN_LENGTH = 2048


@dataclass(frozen=True)
class AccessToken:
    """An app's access_token and when it expires (seconds since the epoch)."""

    value: str = field(repr=False)  # a credential: never in a repr, a log line or a message
    expires_at: float

    def expires_in(self, now: float) -> int:
        return max(0, int(self.expires_at - now))


def fingerprint(token: str) -> str:
    """What the store compares tokens by (a sealed value is different every time)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _sealing_context(app: str) -> str:
    # Bound to its purpose and app: moved to another app's record, it does not open.
    return f"access_token\x00{app}"


class AccessTokens:
    """Each app's access_token: :meth:`current` gives it, :meth:`call` uses it."""

    def __init__(self, store: AppTokenStore, providers: Mapping[str, LoginProvider], clock,
                 sealer: Sealer, lease_time: float = DEFAULT_LEASE_TIME,
                 refresh_margin: float = DEFAULT_REFRESH_MARGIN):
        self.store = store
        self.providers = providers
        self.clock = clock
        self.sealer = sealer
        self.lease_time = lease_time
        self.refresh_margin = refresh_margin
        self._cached: dict[str, AccessToken] = {}
        # One refresh per app in this process; the lease makes it one across processes.
        self._locks: dict[str, asyncio.Lock] = {}
        # Names this process's leases (a process may serve several instances: one each).
        self._holder = uuid.uuid4().hex

    async def current(self, app: str, recheck_store: bool = False) -> AccessToken:
        """The app's token, fetched only when no fresh one is cached or stored.

        ``recheck_store``: compare the cached token with the stored one first (one store
        read), for a token handed out of the process (the admin API): another process may
        have forced a new one since, and a caller outside cannot report a refusal here.
        """
        provider = self._provider(app)
        token = self._cached.get(app)
        if token is not None and recheck_store and not await self._still_stored(app, token):
            self._cached.pop(app, None)
            token = None
        if token is not None and self._fresh(token):
            return token
        async with self._lock(app):
            token = self._cached.get(app)
            if token is not None and self._fresh(token):
                return token  # refreshed while this call waited for the lock
            return await self._obtain(app, provider)

    async def call(self, app: str, request: Callable[[str], Awaitable[T]]) -> T:
        """``request(token)`` with the app's token; once more with a new token if the platform
        refuses that one. A second refusal is a ``platform_error``."""
        token = await self.current(app)
        try:
            return await request(token.value)
        except AccessTokenRejected as rejected:
            if rejected.token != token.value:
                raise  # not ours: nothing to renew
            log.warning("the platform refused app %s's access_token (errcode %s): renewing it",
                        app, rejected.errcode)
            fresh = await self._replace(app, token)
        try:
            return await request(fresh.value)
        except AccessTokenRejected as rejected:
            raise ProviderError(
                "platform_error",
                f"the platform refused app {app}'s access_token twice (errcode "
                f"{rejected.errcode}); retry later") from None

    async def refused(self, app: str, reported) -> AccessToken:
        """The app's backend says the platform refused ``reported``: a new token if that is
        still the current one (one forced refresh, however many report it at once), else the
        current one, without a call to the platform."""
        reported = _reported_token(reported)
        token = await self.current(app, recheck_store=True)
        if not hmac.compare_digest(fingerprint(reported), fingerprint(token.value)):
            return token  # replaced already, or never this app's: the current one serves
        log.warning("the backend reports app %s's access_token refused: renewing it", app)
        return await self._replace(app, token)

    # -- internals ------------------------------------------------------------------------

    def _provider(self, app: str):
        provider = self.providers.get(app)
        if provider is None:
            raise UnknownApp()
        if not provider.supports_access_token:
            raise AccessTokenUnsupported(app, provider.credentials.platform)
        return provider

    async def _still_stored(self, app: str, token: AccessToken) -> bool:
        stored = await self.store.app_token(app)
        return stored is not None and stored.fingerprint == fingerprint(token.value)

    def _lock(self, app: str) -> asyncio.Lock:
        return self._locks.setdefault(app, asyncio.Lock())

    def _fresh(self, token: AccessToken) -> bool:
        return token.expires_at - self.refresh_margin > self.clock.now()

    def _open(self, app: str, stored: StoredAppToken | None) -> AccessToken | None:
        """The stored token if it opens and is fresh; None otherwise."""
        if stored is None:
            return None
        value = self.sealer.open(stored.sealed_value, _sealing_context(app))
        if value is None:
            return None  # sealed with a key no longer configured: fetch a new one
        token = AccessToken(value, stored.expires_at)
        return token if self._fresh(token) else None

    def _keep(self, app: str, token: AccessToken) -> AccessToken:
        self._cached[app] = token
        return token

    async def _obtain(self, app: str, provider, stale: AccessToken | None = None) -> AccessToken:
        """A fresh token from the store, or refreshed under the lease. With ``stale``: the
        token the platform refused, to be replaced (by force) only if still the stored one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lease_time + provider.credentials.timeout
        while True:
            stored = await self.store.app_token(app)
            token = self._open(app, stored)
            if token is not None and (stale is None or token.value != stale.value):
                return self._keep(app, token)
            if await self.store.take_token_lease(app, self._holder, self.clock.now(),
                                                 self.lease_time):
                try:
                    return await self._refresh_holding_lease(app, provider, stale)
                finally:
                    # A release lost with the store costs nothing: the lease runs out.
                    with contextlib.suppress(StoreUnavailable):
                        await self.store.release_token_lease(app, self._holder)
            # Another process is refreshing: its token will be in the store. If it dies, its
            # lease expires and the next take_token_lease here succeeds.
            if loop.time() > deadline:
                raise StoreUnavailable("the app's access_token is being refreshed, try again")
            await asyncio.sleep(_POLL_INTERVAL)

    async def _refresh_holding_lease(self, app: str, provider,
                                     stale: AccessToken | None) -> AccessToken:
        # Re-check: whoever held the lease before may have stored a fresh token.
        token = self._open(app, await self.store.app_token(app))
        # Force a new token only when the refused one is still the stored one
        # (compare-and-expire); if another process replaced it already, that one serves.
        force = stale is not None and await self.store.expire_app_token(
            app, fingerprint(stale.value))
        if not force and token is not None and (stale is None or token.value != stale.value):
            return self._keep(app, token)
        mode = "force" if force else "normal"
        try:
            grant = await provider.fetch_access_token(force=force)
        except ProviderError as error:
            metrics.count_access_token_refresh(app, mode, error.code)
            raise
        metrics.count_access_token_refresh(app, mode, "ok")
        token = AccessToken(grant.value, self.clock.now() + grant.expires_in)
        saved = await self.store.save_app_token(
            app, StoredAppToken(self.sealer.seal(token.value, _sealing_context(app)),
                                fingerprint(token.value), token.expires_at),
            self._holder, self.clock.now())
        if not saved:
            # The lease ran out during the fetch: someone else may be refreshing too. The
            # token is valid all the same (stable_token gives the same one in normal mode).
            log.warning("app %s's access_token refresh outlived its lease (access_token."
                        "lease_time)", app)
        return self._keep(app, token)

    async def _replace(self, app: str, refused: AccessToken) -> AccessToken:
        """A token other than ``refused``, forced only if ``refused`` is still the current
        one: every call that saw it refused at once ends up with the same new token."""
        provider = self._provider(app)
        async with self._lock(app):
            token = self._cached.get(app)
            if token is not None and token.value != refused.value and self._fresh(token):
                return token  # another call of this process renewed it meanwhile
            self._cached.pop(app, None)
            return await self._obtain(app, provider, stale=refused)


def _reported_token(value) -> str:
    if value is None or value == "":
        raise InvalidInput("missing_access_token",
                           "send the access_token the platform refused as 'access_token'")
    if (not isinstance(value, str) or len(value) > MAX_REPORTED_TOKEN_LENGTH
            or not value.isprintable()):
        raise InvalidInput("invalid_access_token", f"access_token must be a printable string "
                                                   f"of at most {MAX_REPORTED_TOKEN_LENGTH} "
                                                   f"characters")
    return value
