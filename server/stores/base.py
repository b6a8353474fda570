"""The store contracts: small, asynchronous, field-level.

Two contracts, each a handful of methods: :class:`SessionStore` (what sessions need: read,
slide, end, data, rotation, listing and revocation) and :class:`UserStore` (what identities
need: logins, session_keys, bindings), and the small :class:`AppTokenStore` (each app's
access_token and the lease to refresh it). All share :class:`StoreLifecycle` (open, close, ping).
A backend is one module implementing both: :class:`server.stores.memory.MemoryStore`
(embedded default, one process) and :class:`server.stores.mongodb.MongoStore` (production,
through motor). One contract suite (``tests/test_store_contract.py``) covers every method of
each contract on both.

Times are float seconds since the epoch, as given by the service's clock: stores never read
the wall clock themselves. Stores do not judge expiry (the service does, on every read, so that
it can tell "expired" from "unknown"); they only keep ``expires_at`` and purge past it.
"""

import json
from dataclasses import dataclass, field
from typing import NamedTuple

# update_data(max_bytes=...) raises it, defined with the other domain errors (re-exported).
from server.errors import DataTooLarge  # noqa: F401


def data_size(data: dict) -> int:
    """The size ``session.data_max_bytes`` limits: the data as compact JSON, in UTF-8 bytes."""
    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))




@dataclass
class SessionRecord:
    """One session as stored.

    ``id`` is the session's storage key, a SHA-256 of the id the client holds
    (:func:`server.ids.storage_key`): neither tokens nor raw ids ever reach the store.
    """

    id: str
    #: Who: the identity is (app, openid); openids of two apps may be equal strings.
    app: str
    openid: str
    unionid: str | None
    created_at: float
    touched_at: float
    expires_at: float
    data: dict = field(default_factory=dict)
    #: The app's user bound to (``app``, ``openid``) (see :meth:`SessionStore.bind`), kept in step with
    #: the binding by the store; None when unbound. Always a string (:func:`canonical_user_id`).
    user_id: str | None = None
    #: Where the login came from, for the admin listing of a user's sessions.
    client_ip: str | None = None
    user_agent: str | None = None
    #: What the admin listing calls this session: its first storage key, kept across
    #: rotations (:meth:`SessionStore.rename`), so a handle ends the session whatever its id.
    handle: str | None = None
    #: The cookies gateway upstreams set for this session (issue 14), by jar (one per route):
    #: ``{jar: {cookie key: cookie}}`` (:mod:`server.gateway.cookie_jar`). Kept apart from
    #: ``data``, which the client reads and writes: the client never sees these.
    cookie_jars: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.handle is None:
            self.handle = self.id


@dataclass
class UserLogin:
    """What a login records about its user. Secrets arrive sealed (:mod:`server.sealing`)."""

    app: str
    openid: str
    unionid: str | None
    sealed_session_key: str | None = field(repr=False)  # None: the platform has none (Alipay)
    #: The candidate session's raw id, sealed: lets a concurrent login be handed the same id.
    sealed_session_id: str = field(repr=False)
    #: A fingerprint of the session_key (never the key): a sealing differs every time, so this
    #: is how the store tells a new key from the one it holds. None: compare sealed values.
    session_key_id: str | None = None


class LoginOutcome(NamedTuple):
    record: SessionRecord
    reused: bool
    #: The sealed raw id of ``record`` (the candidate's own, or the reused session's).
    sealed_session_id: str


class Binding(NamedTuple):
    user_id: str
    bound_at: float


class SessionKeys(NamedTuple):
    """An identity's sealed session_keys: the newest, and the one it replaced, kept so that
    data the client got just before a new login still opens for a short while."""

    newest: str | None
    previous: str | None = None
    #: When ``previous`` stopped being the newest (None when there is no previous).
    replaced_at: float | None = None


class VerifiedPhone(NamedTuple):
    """The phone number the platform verified for an identity, sealed, and when."""

    sealed: str
    verified_at: float


def user_key(app: str, openid: str) -> str:
    """The one string naming an identity in storage: app names never contain ':'."""
    return f"{app}:{openid}"


def canonical_user_id(user_id) -> str | None:
    """The app's user id as minisession gives it: a string (an integer is its decimal form).

    Earlier versions stored integer user ids as integers: stores read them through this.
    """
    if user_id is None or isinstance(user_id, str):
        return user_id
    return str(int(user_id))


class StoreLifecycle:
    """Opening and closing a backend. Every method of every contract may raise
    StoreUnavailable."""

    #: True when expired sessions are not removed by the backend itself (no TTL index), so the
    #: server must call :meth:`SessionStore.purge_expired` periodically.
    needs_purge = True

    async def open(self) -> None:
        """Connect and create collections/indexes. Raises StoreUnavailable if unreachable."""

    async def close(self) -> None:
        """Release connections."""

    async def ping(self) -> None:
        """Return when the store answers; raise StoreUnavailable otherwise."""


class SessionStore(StoreLifecycle):
    """What sessions need. Sessions are found by their storage key (``session_id``)."""

    async def get(self, session_id: str) -> SessionRecord | None:
        """The stored session (expired or not), or None."""
        raise NotImplementedError

    async def touch(self, session_id: str, touched_at: float, expires_at: float) -> None:
        """Slide the expiry. Never moves ``touched_at`` or ``expires_at`` backwards."""
        raise NotImplementedError

    async def delete(self, session_id: str) -> bool:
        """End the session; False when it was already gone (not an error)."""
        raise NotImplementedError

    async def replace_data(self, session_id: str, data: dict) -> bool:
        """Replace the session's data; False when the session is gone."""
        raise NotImplementedError

    async def update_data(self, session_id: str, set_fields: dict, unset_fields: list[str],
                          max_bytes: int | None = None) -> bool:
        """Set and remove top-level data keys, leaving the others untouched; False when gone.

        With ``max_bytes``, raises :class:`DataTooLarge` instead of writing when the data as
        stored at the moment of the write, merged, would be larger (:func:`data_size`): the
        limit holds however many merges run at once.
        """
        raise NotImplementedError

    async def update_cookie_jar(self, session_id: str, jar: str, set_cookies: dict,
                                unset_cookies: list[str], max_bytes: int | None = None) -> bool:
        """Set and remove cookies of one of the session's ``cookie_jars``, leaving its other
        cookies (and other jars) untouched: concurrent responses setting different cookies
        lose none. False when the session is gone. ``jar`` and the cookie keys are safe field
        names (no '.', no leading '$': :func:`server.gateway.cookie_jar.cookie_key`).

        With ``max_bytes``, raises :class:`DataTooLarge` instead of writing when the jar as
        stored at the moment of the write, so changed, would be larger (:func:`data_size`).
        """
        raise NotImplementedError

    async def rename(self, session_id: str, new_id: str) -> SessionRecord | None:
        """Move a session to a new id (id rotation); the old id no longer finds it.

        The session keeps its ``handle``, data and cookie jars. Returns the moved session, or None when
        ``session_id`` does not exist. Revocation wins over rotation: once
        :meth:`delete_sessions` or :meth:`revoke_handle` has returned, a rename that was under
        way leaves no session behind and returns None.
        """
        raise NotImplementedError

    async def list_sessions(self, now: float, app: str | None = None,
                            openid: str | None = None, user_id: str | None = None,
                            unionid: str | None = None,
                            limit: int = 1000) -> list[SessionRecord]:
        """Live sessions (expiring after ``now``) matching every filter given (at least one
        of ``openid``, ``user_id`` or ``unionid``; ``openid`` always with ``app``), oldest
        first, at most ``limit``."""
        raise NotImplementedError

    async def delete_sessions(self, app: str | None = None, openid: str | None = None,
                              user_id: str | None = None, unionid: str | None = None) -> int:
        """End every session matching the filters (as :meth:`list_sessions`); return how
        many."""
        raise NotImplementedError

    async def revoke_handle(self, handle: str, now: float) -> bool:
        """End the session a listing ``handle`` names, under whichever id it has now; False
        when no session has it (or it was being rotated, in which case the rotation fails)."""
        raise NotImplementedError

    async def purge_expired(self, now: float) -> int:
        """Remove sessions whose ``expires_at`` is past; return how many."""
        raise NotImplementedError


class UserStore(StoreLifecycle):
    """What identities (app, openid) need: logins, their session_key, their binding."""

    async def login(self, user: UserLogin, candidate: SessionRecord, reuse_since: float | None,
                    now: float) -> LoginOutcome:
        """Record a login of ``user``; return the session it gets.

        Stores the user's sealed ``session_key`` as the newest one; the newest one held, if it
        is another key (by ``session_key_id``), becomes the previous one, replaced ``now``
        (:meth:`session_keys`). If the session most
        recently issued to this identity (app, openid) was issued at or after ``reuse_since``
        and has not ended, returns it (``reused``) with the sealed id recorded when it was
        issued; otherwise stores ``candidate`` and makes it, with ``user.sealed_session_id``,
        the user's most recent session. ``reuse_since=None`` disables reuse. This must be atomic across processes
        sharing the store: concurrent logins of one identity converge on a single session.
        """
        raise NotImplementedError

    async def session_key(self, app: str, openid: str) -> str | None:
        """The newest sealed session_key recorded for this identity (server-side use only)."""
        raise NotImplementedError

    async def session_keys(self, app: str, openid: str) -> SessionKeys | None:
        """The newest sealed session_key and the previous one, with when it was replaced;
        None for an unknown identity."""
        raise NotImplementedError

    async def replace_session_key(self, app: str, openid: str, sealed_session_key: str,
                                  now: float, session_key_id: str | None = None) -> bool:
        """Make ``sealed_session_key`` the newest (the platform reset it), the newest one
        held becoming the previous one, replaced ``now``, as a login does. False for an
        unknown identity (nothing is stored then). Concurrent replacements and logins end
        with the last one written as the newest and the one it replaced as the previous."""
        raise NotImplementedError

    async def set_phone(self, app: str, openid: str, phone: VerifiedPhone) -> bool:
        """Record the identity's platform-verified phone number (sealed), replacing any;
        False for an unknown identity."""
        raise NotImplementedError

    async def phone(self, app: str, openid: str) -> VerifiedPhone | None:
        raise NotImplementedError

    async def bind(self, app: str, openid: str, user_id: str, now: float) -> None:
        """Bind the identity (``app``, ``openid``) to the company's ``user_id`` (replacing any
        binding). Every session of that identity, existing or created later, carries
        ``user_id`` from then on."""
        raise NotImplementedError

    async def unbind(self, app: str, openid: str) -> bool:
        """Remove the binding; False when there was none."""
        raise NotImplementedError

    async def binding(self, app: str, openid: str) -> Binding | None:
        raise NotImplementedError

    async def identities_with_unionid(self, unionid: str) -> list[tuple[str, str]]:
        """Every identity (app, openid) that logged in with this unionid."""
        raise NotImplementedError

    async def bind_unionid(self, unionid: str, user_id: str, now: float) -> None:
        """Record that the person with this unionid is the company's ``user_id`` (replacing
        any such record), for identities that log in with it later (the service binds them)."""
        raise NotImplementedError

    async def unbind_unionid(self, unionid: str) -> bool:
        """Forget that record; False when there was none."""
        raise NotImplementedError

    async def unionid_binding(self, unionid: str) -> Binding | None:
        raise NotImplementedError


@dataclass(frozen=True)
class StoredAppToken:
    """An app's access_token as stored: sealed (:mod:`server.sealing`), with a fingerprint to
    compare it by (sealing is randomized) and its expiry (seconds since the epoch)."""

    sealed_value: str = field(repr=False)
    fingerprint: str
    expires_at: float


class AppTokenStore(StoreLifecycle):
    """Each app's one access_token, and the lease that lets one process at a time refresh it
    (across every process sharing the store; see :mod:`server.access_tokens`)."""

    async def app_token(self, app: str) -> StoredAppToken | None:
        """The app's stored token (expired or not), or None."""
        raise NotImplementedError

    async def take_token_lease(self, app: str, holder: str, now: float,
                               lease_time: float) -> bool:
        """Take the app's refresh lease for ``lease_time`` seconds from ``now``; True when
        ``holder`` got it. At most one holder at a time; a lease past its time is free."""
        raise NotImplementedError

    async def release_token_lease(self, app: str, holder: str) -> None:
        """Give the lease back, if ``holder`` still holds it (else nothing)."""
        raise NotImplementedError

    async def save_app_token(self, app: str, token: StoredAppToken, holder: str,
                             now: float) -> bool:
        """Store ``token`` as the app's, if ``holder`` still holds an unexpired lease at
        ``now``; False (nothing written) otherwise."""
        raise NotImplementedError

    async def expire_app_token(self, app: str, fingerprint: str) -> bool:
        """Mark the stored token expired if its fingerprint is ``fingerprint`` (it is still the
        current one); False when it is not (or there is none). Called by the lease holder,
        like :meth:`save_app_token`: on FerretDB the two must not overlap."""
        raise NotImplementedError


class Store(SessionStore, UserStore, AppTokenStore):
    """A backend: every contract over one storage (a login writes a session and its user)."""
