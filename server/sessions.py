"""The session service: the policy between HTTP handlers and the store.

One request path: handler -> SessionService -> SessionStore / UserStore. This module decides lifetimes
(sliding ``idle_timeout``, absolute ``max_lifetime``, lazy touch after ``touch_after``), which
id a request carries, login reuse, and what session data may hold.
"""

import contextlib
import hashlib
import itertools
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from server import metrics, user_data
from server.access_tokens import AccessTokens
from server.errors import (
    AppRequired,
    DataTooLarge,
    InvalidInput,
    NoSession,
    NotAuthenticated,
    SessionExpired,
    SessionInvalid,
    SessionKeyStale,
    UnknownApp,
)
from server.ids import SessionIdSigner, storage_key
from server.platforms import Identity, LoginProvider, ProviderError
from server.sealing import Sealer
from server.stores.base import (
    Binding,
    SessionRecord,
    SessionStore,
    UserLogin,
    UserStore,
    data_size,
)

log = logging.getLogger("minisession.sessions")

MAX_CODE_LENGTH = 256
#: An anonymous identity's openid starts with this (see :func:`anonymous_key`).
ANONYMOUS_PREFIX = "anon:"
MAX_LOOKUPS = 3  # store reads one request may spend on the ids it carries
MAX_DATA_DEPTH = 32
MAX_USER_AGENT = 256
MAX_USER_ID_LENGTH = 256
_INT64 = 2**63
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # lone surrogates (pairs decode to one char)


@dataclass(frozen=True)
class SessionPolicy:
    """The lifetime and size rules, in seconds and bytes (from ``[session]`` in the config)."""

    idle_timeout: int = 7200
    max_lifetime: int = 604800
    touch_after: int = 60
    login_reuse_window: int = 30
    data_max_bytes: int = 16384
    data_max_values: int = 1000
    #: How long a replaced platform session_key still opens data (0: never).
    session_key_grace: int = 300


@dataclass
class ActiveSession:
    """A session that a request proved it holds, with the token it used.

    ``record.id`` is the storage key (a hash of the id), never the id itself. ``slid`` is
    True when this request moved the expiry (at most once per ``touch_after``): the client's
    cookie must then be given the new lifetime.
    """

    record: SessionRecord
    token: str
    slid: bool = False

    @property
    def app(self) -> str:
        return self.record.app

    @property
    def openid(self) -> str:
        return self.record.openid

    @property
    def user_id(self):
        """The company's user bound to this identity, or None (see the admin API's bindings)."""
        return self.record.user_id

    @property
    def data(self) -> dict:
        return self.record.data


@dataclass(frozen=True)
class UserSummary:
    """One identity as ``minisession users show`` reports it: no secret in it."""

    app: str
    openid: str
    binding: Binding | None
    unionid: str | None
    holds_session_key: bool
    live_sessions: int


def _sealing_context(purpose: str, app: str, openid: str) -> str:
    # Binds a sealed value to its field and identity: moved elsewhere in the database (to another
    # user, or to the same openid of another app), it won't open.
    return f"{purpose}\x00{app}\x00{openid}"


def session_key_id(session_key: str) -> str:
    """What the store tells session_keys apart by (their sealings all differ): a SHA-256
    fingerprint, which gives nothing of a random 128-bit key away."""
    return hashlib.sha256(b"minisession session_key id\x00" + session_key.encode()).hexdigest()


def legacy_resealer(sealer: Sealer, app: str):
    """For ``minisession migrate``: reseals a value sealed before apps existed (associated
    data without the app) for ``app``; None when it does not open."""
    def reseal(purpose: str, openid: str, sealed: str) -> str | None:
        plain = sealer.open(sealed, f"{purpose}\x00{openid}")
        return None if plain is None else sealer.seal(plain, _sealing_context(purpose, app, openid))
    return reseal


class SessionService:
    def __init__(self, sessions: SessionStore, users: UserStore, signer: SessionIdSigner,
                 providers: Mapping[str, LoginProvider], clock, policy: SessionPolicy,
                 sealer: Sealer, default_app: str | None = None, access_tokens=None):
        """``sessions``, ``users``: the two store contracts (one backend usually serves
        both). ``providers``: each app's login provider, by app name. ``default_app``: the app
        of a login that names none (with a single app, that app). ``access_tokens``: each
        app's one access_token (:class:`server.access_tokens.AccessTokens`), for the calls to a
        platform that need it; built from the arguments when not given."""
        self.sessions = sessions
        self.users = users
        self.signer = signer
        self.providers = dict(providers)
        if default_app is None and len(self.providers) == 1:
            default_app = next(iter(self.providers))
        self.default_app = default_app
        self.clock = clock
        self.policy = policy
        self.sealer = sealer
        self.access_tokens = access_tokens or AccessTokens(users, self.providers, clock, sealer)

    # -- lifetimes -------------------------------------------------------------------------

    def _expiry(self, created_at: float, now: float) -> float:
        return min(now + self.policy.idle_timeout, created_at + self.policy.max_lifetime)

    # -- apps ------------------------------------------------------------------------------

    def check_app(self, app: str | None) -> str:
        """The app a request names, if it is served (a 404 ``unknown_app`` if not); None
        means the default app (a 404 ``app_required`` when several apps have no default)."""
        if app is None:
            if self.default_app is None:
                raise AppRequired()
            return self.default_app
        if app not in self.providers:
            raise UnknownApp()
        return app

    # -- login -----------------------------------------------------------------------------

    async def login(self, app: str | None, code: str | None, client_ip: str | None = None,
                    user_agent: str | None = None, anonymous_code: str | None = None,
                    current: list[str] | None = None) -> tuple[ActiveSession, bool]:
        """Exchange a login code for a session: ``(session, reused)``.

        Concurrent logins of one user within ``login_reuse_window`` get the same session, so
        clients that all hit a 401 at once and each log in stop overwriting each other's id.
        ``client_ip`` and ``user_agent`` are kept with a new session for the admin listing.
        ``anonymous_code`` (Douyin's ``anonymousCode``; other platforms ignore it) may stand
        in for ``code``: the session is then anonymous (:func:`anonymous_key`). ``current``:
        the session ids the request carries; a live anonymous session of the same app among
        them becomes this login's (:meth:`_carry_over`).
        """
        app = self.check_app(app)
        provider = self.providers[app]
        if not provider.takes_anonymous_code:
            anonymous_code = None
        if anonymous_code is None or anonymous_code == "":
            if provider.takes_anonymous_code and (code is None or code == ""):
                raise InvalidInput("missing_code", "send tt.login()'s code as 'code' or its "
                                                   "anonymousCode as 'anonymous_code'")
            code, anonymous_code = validate_code(code), None
        else:
            code = None if code is None or code == "" else validate_code(code)
            anonymous_code = validate_code(anonymous_code, "anonymous_code")
        identity = await provider.exchange(code, anonymous_code)
        origin = {"client_ip": client_ip,
                  "user_agent": user_agent[:MAX_USER_AGENT] if user_agent else None}
        window = self.policy.login_reuse_window
        session = await self._login(app, identity, origin, reuse=window > 0)
        if session is None:
            # The reused session's id was sealed with a key no longer configured: a new one.
            session = await self._login(app, identity, origin, reuse=False)
        await self._adopt_unionid_binding(session[0])
        # Only a platform with anonymous logins can have an anonymous session to carry over:
        # the others spend no store read on looking for one.
        if provider.takes_anonymous_code and not identity.anonymous and current:
            await self._carry_over(current, session[0])
        return session

    async def _carry_over(self, current: list[str], session: ActiveSession) -> None:
        """An anonymous user who logs in keeps what the app stored meanwhile: the data of the
        anonymous session the request carries (same app) is merged into the new session's,
        whose own keys win, and the anonymous session ends. Data that would not fit (the
        session's byte limit) is not carried, and the anonymous session is left as it was."""
        try:
            previous = await self._first_live(self._signed(current), touch=False)
        except NotAuthenticated:
            return
        if not is_anonymous(previous.openid) or previous.app != session.app:
            return
        carried = {k: v for k, v in previous.data.items() if k not in session.data}
        if carried:
            try:
                written = await self.sessions.update_data(
                    session.record.id, carried, [], max_bytes=self.policy.data_max_bytes)
            except DataTooLarge:
                log.warning("an anonymous session's data did not fit in the logged-in "
                            "session; the anonymous session is kept")
                return
            if not written:
                return
            session.record.data = {**session.data, **carried}
        await self.sessions.delete(previous.record.id)
        metrics.count_revoked("anonymous_login")

    async def _adopt_unionid_binding(self, session: ActiveSession) -> None:
        """An unbound identity whose person was bound by unionid (``bind_unionid``) is bound
        to that user at its login, in whichever app."""
        record = session.record
        if record.user_id is not None or record.unionid is None:
            return
        binding = await self.users.unionid_binding(record.unionid)
        if binding is not None:
            await self.users.bind(record.app, record.openid, binding.user_id, self.clock.now())
            record.user_id = binding.user_id

    async def _login(self, app: str, identity: Identity, origin: dict,
                     reuse: bool) -> tuple[ActiveSession, bool] | None:
        now = self.clock.now()
        raw_id, token = self.signer.new_token()
        openid = identity_key(identity)
        candidate = SessionRecord(
            id=storage_key(raw_id), app=app, openid=openid, unionid=identity.unionid,
            created_at=now, touched_at=now, expires_at=self._expiry(now, now), data={},
            **origin,
        )
        # Alipay has no session_key: nothing to keep then.
        session_key = identity.session_key
        user = UserLogin(
            app=app, openid=openid, unionid=identity.unionid,
            sealed_session_key=None if session_key is None else self.sealer.seal(
                session_key, _sealing_context("session_key", app, openid)),
            sealed_session_id=self.sealer.seal(
                raw_id, _sealing_context("session_id", app, openid)),
            session_key_id=None if session_key is None else session_key_id(session_key),
        )
        since = now - self.policy.login_reuse_window if reuse else None
        outcome = await self.users.login(user, candidate, since, now)
        if not outcome.reused:
            return ActiveSession(outcome.record, token), False
        raw_id = self.sealer.open(outcome.sealed_session_id,
                                  _sealing_context("session_id", app, openid))
        if raw_id is None or storage_key(raw_id) != outcome.record.id:
            log.warning("the recent session of a user could not be unsealed (encryption key "
                        "removed?); issuing a new session")
            return None
        return ActiveSession(outcome.record, self.signer.sign(raw_id)), True

    # -- authenticating requests -----------------------------------------------------------

    async def authenticate(self, candidates: list[str]) -> ActiveSession:
        """The live session of a client's request (see ``resolve``), its expiry slid.

        The store write is skipped while the last slide is younger than ``touch_after`` (so
        most requests cost one read and no write).
        """
        return await self.resolve(candidates, touch=True)

    async def resolve(self, candidates: list[str], touch: bool = False) -> ActiveSession:
        """Which session a request is: the one answer for authentication, logout, rotation
        and introspection, so that they all act on the same session.

        Candidates come in precedence order (session header first, then cookies). A client
        may send a stale id next to a fresh one (say, an old header and a new cookie): the
        first signed id whose session is live wins, within ``MAX_LOOKUPS`` store reads.
        Forged or tampered tokens are rejected without touching the store. Raises the 401
        ``no_session``, ``invalid_session`` or the first signed id's ``session_expired``.
        """
        return await self._first_live(self._signed(candidates), touch)

    def _signed(self, candidates: list[str]) -> dict[str, str]:
        """Raw id -> its first token, for the correctly signed candidates, in order; a 401
        when there are none."""
        if not candidates:
            raise NoSession()
        verified: dict[str, str] = {}
        for token in candidates:
            raw_id = self.signer.verify(token)
            if raw_id is not None:
                verified.setdefault(raw_id, token)
        if not verified:
            raise SessionInvalid()
        return verified

    async def _first_live(self, verified: dict[str, str], touch: bool) -> ActiveSession:
        first_error = None
        for raw_id, token in itertools.islice(verified.items(), MAX_LOOKUPS):
            try:
                return await self._live_session(raw_id, token, touch)
            except NotAuthenticated as exc:
                first_error = first_error or exc
        raise first_error

    async def _live_session(self, raw_id: str, token: str, touch: bool = True) -> ActiveSession:
        key = storage_key(raw_id)
        record = await self.sessions.get(key)
        if record is None:
            raise SessionInvalid()
        now = self.clock.now()
        if record.expires_at <= now:
            await self.sessions.delete(key)
            metrics.count_expired("on_read")
            raise SessionExpired()
        if touch and now - record.touched_at >= self.policy.touch_after:
            expires_at = self._expiry(record.created_at, now)
            await self.sessions.touch(key, now, expires_at)
            record.touched_at, record.expires_at = now, max(record.expires_at, expires_at)
            return ActiveSession(record, token, slid=True)
        return ActiveSession(record, token)

    async def logout(self, candidates: list[str]) -> None:
        """End the session the request is (``resolve``), without sliding it first.

        A request whose signed ids name no live session is already logged out: no error, so
        that logging out twice is fine. Without a signed id it is a 401 (``_signed``).
        """
        verified = self._signed(candidates)
        try:
            session = await self._first_live(verified, touch=False)
        except NotAuthenticated:  # (a store outage is not: the session may still be alive)
            return
        await self.sessions.delete(session.record.id)
        metrics.count_revoked("logout")

    async def introspect(self, token, touch: bool = False) -> ActiveSession | None:
        """The live session a token names, for the app's backend; None if it names none.

        Unlike a client's own request, introspection does not slide the expiry unless asked:
        a backend checking a session is not the user using it.
        """
        try:
            return await self.resolve([token], touch=touch)
        except NotAuthenticated:
            return None

    # -- the app's backend: bindings and revocation ------------------------------------------

    async def bind(self, app: str, openid: str, user_id) -> None:
        await self.users.bind(self.check_app(app), openid, check_user_id(user_id),
                              self.clock.now())

    async def unbind(self, app: str, openid: str) -> bool:
        return await self.users.unbind(self.check_app(app), openid)

    async def binding(self, app: str, openid: str):
        return await self.users.binding(self.check_app(app), openid)

    async def bind_unionid(self, unionid: str, user_id) -> tuple[str, list[tuple[str, str]]]:
        """One person across the company's apps: every identity with this unionid, in every
        app, is bound to ``user_id``: those known now, and those that log in with it later.
        Returns the user id (canonical) and the identities bound now (app, openid)."""
        user_id = check_user_id(user_id)
        # The record first: an identity logging in meanwhile finds it, or is listed below.
        await self.users.bind_unionid(unionid, user_id, self.clock.now())
        identities = await self.users.identities_with_unionid(unionid)
        for app, openid in identities:
            await self.users.bind(app, openid, user_id, self.clock.now())
        return user_id, identities

    async def unionid_binding(self, unionid: str):
        return await self.users.unionid_binding(unionid)

    async def unbind_unionid(self, unionid: str) -> bool:
        """Undo :meth:`bind_unionid`: the identities it bound (still bound to that user) are
        unbound, and later logins are no longer bound. False when there was no such binding."""
        binding = await self.users.unionid_binding(unionid)
        if binding is None:
            return False
        await self.users.unbind_unionid(unionid)
        for app, openid in await self.users.identities_with_unionid(unionid):
            current = await self.users.binding(app, openid)
            if current is not None and current.user_id == binding.user_id:
                await self.users.unbind(app, openid)
        return True

    async def sessions_of(self, app=None, openid=None, user_id=None,
                          unionid=None) -> list[SessionRecord]:
        return await self.sessions.list_sessions(self.clock.now(), **self._owner(
            app, openid, user_id, unionid))

    async def revoke_all(self, app=None, openid=None, user_id=None, unionid=None) -> int:
        revoked = await self.sessions.delete_sessions(**self._owner(app, openid, user_id,
                                                                    unionid))
        metrics.count_revoked("admin", revoked)
        return revoked

    def _owner(self, app, openid, user_id, unionid) -> dict:
        """The store's filter of an admin request: an openid only within its app."""
        if app is not None:
            app = self.check_app(app)
        elif openid is not None:
            app = self.check_app(None)  # the old single-app paths: the default app
        return {"app": app, "openid": openid, "user_id": _checked_filter(user_id),
                "unionid": unionid}

    async def user_summary(self, app: str | None, openid: str) -> "UserSummary":
        """What is known of one identity, for ``minisession users show``: its binding, its
        unionid (as its newest live session carries it), whether a session_key is held (never
        the key) and how many live sessions it has."""
        app = self.check_app(app)
        sessions = await self.sessions_of(app=app, openid=openid)
        return UserSummary(
            app=app, openid=openid, binding=await self.users.binding(app, openid),
            unionid=next((s.unionid for s in reversed(sessions) if s.unionid), None),
            holds_session_key=await self.users.session_key(app, openid) is not None,
            live_sessions=len(sessions))

    async def purge_expired(self) -> int:
        """Remove the sessions already expired now (the server does it every
        ``store.purge_interval``); how many."""
        return await self.sessions.purge_expired(self.clock.now())

    async def revoke_handle(self, handle: str) -> bool:
        """End one session by its listing handle (kept across rotations); False if none."""
        revoked = await self.sessions.revoke_handle(handle, self.clock.now())
        metrics.count_revoked("admin", int(revoked))
        return revoked

    async def rotate(self, session: ActiveSession) -> ActiveSession:
        """Move the session to a fresh id (after a privilege change); the old id stops working.

        The session keeps its data, owner, creation time and expiry. If the store fails half
        way, the old id is already dead and the client must log in again (503 first).
        """
        raw_id, token = self.signer.new_token()
        record = await self.sessions.rename(session.record.id, storage_key(raw_id))
        if record is None:
            raise SessionInvalid()
        metrics.SESSIONS_ROTATED.inc()
        metrics.count_revoked("rotation_supersede")  # the old id
        return ActiveSession(record, token)

    async def session_key(self, app: str, openid: str) -> str | None:
        """The identity's newest platform session_key, for server-side use only; None if
        unknown (or sealed with a key that is no longer configured)."""
        sealed = await self.users.session_key(app, openid)
        if sealed is None:
            return None
        return self.sealer.open(sealed, _sealing_context("session_key", app, openid))

    async def _usable_session_keys(self, app: str, openid: str) -> list[str | None]:
        """The identity's session_keys to try, newest first: the newest (None when none is
        held), then the one it replaced while within ``session_key_grace``."""
        stored = await self.users.session_keys(app, openid)
        if stored is None:
            return [None]
        context = _sealing_context("session_key", app, openid)
        keys = [None if stored.newest is None else self.sealer.open(stored.newest, context)]
        if stored.previous is not None and stored.replaced_at is not None \
                and self.clock.now() - stored.replaced_at < self.policy.session_key_grace:
            previous = self.sealer.open(stored.previous, context)
            if previous is not None:
                keys.append(previous)
        return keys

    # -- the user data the platform gave the client ------------------------------------------

    async def decrypt_user_data(self, session: ActiveSession, encrypted_data,
                                iv) -> tuple[dict, dict]:
        """The client's ``encryptedData`` opened with its identity's newest session_key, or
        the previous one within the grace period: ``(data, watermark)``
        (:func:`server.user_data.decrypt`)."""
        credentials = self.providers[session.app].credentials
        newest, *older = await self._usable_session_keys(session.app, session.openid)
        try:
            return user_data.decrypt(credentials.platform, credentials.appid, newest,
                                     encrypted_data, iv)
        except SessionKeyStale:
            # The client may have logged in again after it got the data.
            for key in older:
                with contextlib.suppress(SessionKeyStale):
                    return user_data.decrypt(credentials.platform, credentials.appid, key,
                                             encrypted_data, iv)
            raise

    async def verify_user_data(self, session: ActiveSession, raw_data, signature) -> None:
        """Checks ``rawData``'s signature with the identity's newest session_key (or the
        previous one within the grace period); a 400 ``signature_mismatch`` when it is not
        the platform's."""
        newest, *older = await self._usable_session_keys(session.app, session.openid)
        if user_data.signature_matches(newest, raw_data, signature):
            return
        if not any(user_data.signature_matches(key, raw_data, signature) for key in older):
            raise InvalidInput("signature_mismatch",
                               "rawData is not signed with this user's session_key (changed, "
                               "or the client logged in again after getting it)")

    # -- session data ----------------------------------------------------------------------

    async def replace_data(self, session: ActiveSession, data) -> dict:
        data = self._checked_data(data)
        if not await self.sessions.replace_data(session.record.id, data):
            raise SessionInvalid()
        session.record.data = data
        return data

    async def merge_data(self, session: ActiveSession, patch) -> dict:
        """Merge top-level keys into the data; a key set to ``null`` is removed.

        Only the keys named in the patch are written, so concurrent patches of different keys
        (even from different processes) never lose each other's writes.
        """
        patch = self._checked_data(patch, limit=False)
        merged = dict(session.record.data)
        set_fields = {k: v for k, v in patch.items() if v is not None}
        unset_fields = [k for k, v in patch.items() if v is None]
        merged.update(set_fields)
        for key in unset_fields:
            merged.pop(key, None)
        # Judged on this request's view first (no write for what is too large already), then
        # by the store on the data as stored when the write lands, whatever runs at once.
        self._check_size(merged)
        try:
            written = await self.sessions.update_data(session.record.id, set_fields, unset_fields,
                                                   max_bytes=self.policy.data_max_bytes)
        except DataTooLarge as exc:  # the store's judgement, in bytes
            raise self._too_large(exc.size) from None
        if not written:
            raise SessionInvalid()
        session.record.data = merged
        return merged

    def _checked_data(self, data, limit: bool = True) -> dict:
        if not isinstance(data, dict):
            raise InvalidInput("invalid_data", "session data must be a JSON object")
        _check_value(data, 0)
        if limit:
            self._check_size(data)
        return data

    def _check_size(self, data: dict) -> None:
        size = data_size(data)
        if size > self.policy.data_max_bytes:
            raise self._too_large(size)
        # Bytes alone do not bound memory: "[]," is 3 bytes of JSON but ~60 in Python.
        limit = self.policy.data_max_values
        if _count_values(data, limit) > limit:
            raise DataTooLarge(message=f"session data would hold more than {limit} values "
                                       f"(objects, arrays, strings, numbers...); store fewer")

    def _too_large(self, size: int) -> DataTooLarge:
        return DataTooLarge(size, f"session data would be {size} bytes; the limit is "
                                  f"{self.policy.data_max_bytes}")


def check_user_id(user_id) -> str:
    """The app's user id, as a string: a non-empty string of printable characters, or a 64-bit
    integer, taken as its decimal string (the app's user 1001 is "1001" whichever was sent)."""
    if isinstance(user_id, str) and 0 < len(user_id) <= MAX_USER_ID_LENGTH \
            and user_id.isprintable():
        return user_id
    if isinstance(user_id, int) and not isinstance(user_id, bool) and -_INT64 <= user_id < _INT64:
        return str(user_id)
    raise InvalidInput("invalid_user_id",
                   f"user_id must be a printable string of 1-{MAX_USER_ID_LENGTH} characters "
                   "or a 64-bit integer")


def _checked_filter(user_id) -> str | None:
    return None if user_id is None else check_user_id(user_id)


def validate_code(code, name: str = "code") -> str:
    """A login code must be a short printable string (WeChat's are 32 characters)."""
    if code is None or code == "":
        raise InvalidInput("missing_code", "send the code from wx.login() as 'code'")
    if not isinstance(code, str) or len(code) > MAX_CODE_LENGTH or not code.isprintable():
        raise InvalidInput("code_invalid",
                       f"{name} must be a printable string of at most {MAX_CODE_LENGTH} characters")
    return code


def anonymous_key(anonymous_openid: str) -> str:
    """The openid under which an anonymous identity (Douyin's ``anonymous_openid``) is kept.

    The prefix keeps it apart from every real openid: no platform's openids contain ':' (the
    dev platform's cannot), and a platform answer that did is refused (:func:`identity_key`).
    """
    return ANONYMOUS_PREFIX + anonymous_openid


def is_anonymous(openid: str) -> bool:
    return openid.startswith(ANONYMOUS_PREFIX)


def identity_key(identity: Identity) -> str:
    """The openid an identity is stored under: its own, or its anonymous key."""
    if identity.anonymous:
        return anonymous_key(identity.anonymous_openid)
    if is_anonymous(identity.openid):
        raise ProviderError("platform_unavailable",
                            "the platform named the user by an openid this server cannot keep")
    return identity.openid


def _count_values(data: dict, limit: int) -> int:
    """The JSON values inside ``data`` (not counting ``data`` itself), counted up to past
    ``limit``."""
    count = 0
    pending = [data]
    while pending and count <= limit:
        items = pending.pop()
        items = items.values() if isinstance(items, dict) else items
        count += len(items)
        pending.extend(item for item in items if isinstance(item, (dict, list)))
    return count


def _check_value(value, depth: int) -> None:
    """Reject what the stores cannot keep faithfully, or could not serve back as JSON: deep
    nesting, odd keys, huge integers, infinite numbers, lone surrogates, arrays in arrays."""
    if depth > MAX_DATA_DEPTH:
        raise InvalidInput("invalid_data", f"session data is nested deeper than {MAX_DATA_DEPTH}")
    if isinstance(value, dict):
        for key, item in value.items():
            # MongoDB reads '.' as a path and '$' as an operator: such keys would not round-trip.
            if not key or "." in key or key.startswith("$") or "\x00" in key:
                raise InvalidInput("invalid_data",
                               f"invalid key {key[:40]!r}: keys must be non-empty and contain "
                               "no '.', no NUL and not start with '$'")
            _check_text(key)
            _check_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, list):
                # FerretDB 1.x refuses them; refused on every backend so that all answer alike.
                raise InvalidInput("invalid_data",
                               "arrays directly inside arrays are not supported: wrap the inner "
                               "array in an object, e.g. [{\"items\": [...]}]")
            _check_value(item, depth + 1)
    elif isinstance(value, str):
        _check_text(value)
    elif isinstance(value, float):
        if not math.isfinite(value):  # 1e999 parses as infinity, which JSON cannot carry
            raise InvalidInput("invalid_data",
                           "numbers in session data must be finite (1e999 is out of range)")
    elif isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
        raise InvalidInput("invalid_data", "integers in session data must fit in 64 bits")


def _check_text(text: str) -> None:
    # JSON's "\ud800" escape decodes to a lone surrogate, which has no UTF-8 form: it could be
    # neither stored (BSON) nor sent back.
    if _SURROGATE.search(text):
        raise InvalidInput("invalid_data",
                           "strings in session data must be valid Unicode (a \\uXXXX escape "
                           "of a lone surrogate is not)")
