"""Metrics around the two things minisession waits on: the session store and the platforms.

Thin wrappers, put around the store and the login provider where the server builds them
(``server.app.make_store`` / ``make_provider``), so that no store or platform module knows
about metrics. Everything else is passed through unchanged.
"""

import inspect
import time

from server import metrics
from server.errors import DomainError, StoreUnavailable
from server.platforms import LoginProvider, ProviderError
from server.platforms.base import AccessTokenRejected
from server.stores.base import DataTooLarge, SessionStore

#: Exceptions that are answers, not failures of the store.
_STORE_ANSWERS = (DataTooLarge,)


class InstrumentedStore:
    """The store, each of its calls timed by operation (method name) and failures counted."""

    def __init__(self, store: SessionStore):
        self.wrapped = store

    def __getattr__(self, name: str):
        attribute = getattr(self.wrapped, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(attribute):
            return attribute  # properties (needs_purge...) are read afresh each time
        timed = _timed_store_call(name, attribute)
        self.__dict__[name] = timed  # wrapped once per method, not once per call
        return timed


def _timed_store_call(operation: str, method):
    duration = metrics.STORE_OPERATION_DURATION.labels(operation)

    async def call(*args, **kwargs):
        start = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        except _STORE_ANSWERS:
            raise
        except StoreUnavailable:
            metrics.STORE_ERRORS.labels(operation, "unavailable").inc()
            raise
        except Exception:
            metrics.STORE_ERRORS.labels(operation, "unexpected").inc()
            raise
        finally:
            duration.observe(time.perf_counter() - start)

    return call


class InstrumentedProvider:
    """The login provider, each code exchange timed and counted by outcome (``ok`` or the
    generic :class:`ProviderError` code: never the platform's words or anything of the user),
    and so each call it makes with the app's access_token (its ``access_token_calls``: method
    -> endpoint), whose outcome may also be ``access_token_rejected`` or the code of the
    answer it became (``session_key_stale``)."""

    def __init__(self, provider: LoginProvider):
        self.wrapped = provider
        platform = provider.credentials.platform
        endpoint = getattr(provider, "endpoint", "login")
        self._labels = (platform, endpoint)
        self._duration = metrics.PLATFORM_CALL_DURATION.labels(platform, endpoint)

    def __getattr__(self, name: str):
        attribute = getattr(self.wrapped, name)
        endpoint = getattr(self.wrapped, "access_token_calls", {}).get(name)
        if endpoint is None:
            return attribute
        timed = _timed_platform_call(self.wrapped.credentials.platform, endpoint, attribute)
        self.__dict__[name] = timed  # wrapped once per method, not once per call
        return timed

    async def exchange(self, code, anonymous_code=None):
        start, outcome = time.perf_counter(), "internal_error"
        try:
            identity = await self.wrapped.exchange(code, anonymous_code)
            outcome = "ok"
            return identity
        except ProviderError as error:
            outcome = error.code
            raise
        finally:
            self._duration.observe(time.perf_counter() - start)
            metrics.PLATFORM_CALLS.labels(*self._labels, outcome).inc()


def _timed_platform_call(platform: str, endpoint: str, method):
    duration = metrics.PLATFORM_CALL_DURATION.labels(platform, endpoint)

    async def call(*args, **kwargs):
        start, outcome = time.perf_counter(), "internal_error"
        try:
            result = await method(*args, **kwargs)
            outcome = "ok"
            return result
        except AccessTokenRejected:
            outcome = "access_token_rejected"  # the call is run again with a new token
            raise
        except DomainError as error:  # ProviderError, SessionKeyStale: a generic code
            outcome = error.code
            raise
        finally:
            duration.observe(time.perf_counter() - start)
            metrics.PLATFORM_CALLS.labels(platform, endpoint, outcome).inc()

    return call
