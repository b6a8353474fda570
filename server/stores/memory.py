"""In-process session store: the embedded default.

Single process only and lost on restart: fine for development and tests, not for production
(use ``backend = "mongodb"``). Each method runs without awaiting, so on one event loop every
method is atomic, which is what the contract's concurrency guarantees need.

Bounded (``store.max_sessions``): at the cap, a login evicts the session closest to expiry,
which is the least recently used one (or one near its ``max_lifetime``): the users it costs a
re-login are those about to need one anyway, and a flood of logins cannot lock new users out.
A user's record (``session_key``, recent login) is dropped with its last session, at the next
purge, unless it holds a binding.
"""

import copy
import heapq
import logging

from server.stores.base import (
    Binding,
    LoginOutcome,
    SessionRecord,
    DataTooLarge,
    SessionKeys,
    Store,
    StoredAppToken,
    UserLogin,
    VerifiedPhone,
    data_size,
    user_key,
)

log = logging.getLogger("minisession.store")

EVICTION_LOG_INTERVAL = 60.0  # seconds between two warnings that the store is full


class _User:
    __slots__ = ("binding", "phone", "previous_session_key", "recent_at", "recent_sealed_id",
                 "recent_session_id", "session_key", "session_key_id", "session_key_replaced_at",
                 "unionid")

    def __init__(self) -> None:
        self.unionid: str | None = None
        self.session_key: str | None = None
        self.session_key_id: str | None = None
        self.previous_session_key: str | None = None
        self.session_key_replaced_at: float | None = None
        self.phone: VerifiedPhone | None = None
        self.recent_session_id: str | None = None
        self.recent_sealed_id = ""
        self.recent_at = 0.0
        self.binding: Binding | None = None

    def new_session_key(self, sealed: str | None, key_id: str | None, now: float) -> None:
        same = sealed == self.session_key or (key_id is not None
                                              and key_id == self.session_key_id)
        if sealed is None or self.session_key is None:
            self.previous_session_key = self.session_key_replaced_at = None
        elif not same:
            self.previous_session_key, self.session_key_replaced_at = self.session_key, now
        self.session_key, self.session_key_id = sealed, key_id


class MemoryStore(Store):
    def __init__(self, max_sessions: int | None = None) -> None:
        """``max_sessions``: the most sessions held at once (None: no limit)."""
        self._sessions: dict[str, SessionRecord] = {}
        self._users: dict[str, _User] = {}  # by user_key(app, openid)
        self._unionid_bindings: dict[str, Binding] = {}
        self._max_sessions = max_sessions
        # A heap of (expires_at, id), one entry per expiry a session has had: the one closest
        # to expiry is found without a scan. Outdated entries are skipped when popped.
        self._expiries: list[tuple[float, str]] = []
        self._warned_full_at: float | None = None
        self._app_tokens: dict[str, StoredAppToken] = {}
        self._token_leases: dict[str, tuple[str, float]] = {}  # app -> (holder, until)

    def session_count(self) -> int:
        """How many sessions are held (expired ones included until purged or evicted)."""
        return len(self._sessions)

    async def login(self, login: UserLogin, candidate: SessionRecord, reuse_since: float | None,
                    now: float) -> LoginOutcome:
        user = self._users.setdefault(user_key(login.app, login.openid), _User())
        user.new_session_key(login.sealed_session_key, login.session_key_id, now)
        if login.unionid is not None:
            user.unionid = login.unionid
        if reuse_since is not None and user.recent_at >= reuse_since:
            recent = self._sessions.get(user.recent_session_id)
            if recent is not None and recent.expires_at > now:
                return LoginOutcome(copy.deepcopy(recent), True, user.recent_sealed_id)
        candidate.user_id = user.binding.user_id if user.binding else None
        if self._max_sessions is not None and len(self._sessions) >= self._max_sessions:
            self._evict(len(self._sessions) - self._max_sessions + 1, now)
        self._sessions[candidate.id] = copy.deepcopy(candidate)
        self._note_expiry(candidate.id, candidate.expires_at)
        user.recent_session_id, user.recent_at = candidate.id, now
        user.recent_sealed_id = login.sealed_session_id
        return LoginOutcome(candidate, False, login.sealed_session_id)

    async def get(self, session_id: str) -> SessionRecord | None:
        record = self._sessions.get(session_id)
        # Copies, so that callers never mutate the stored state behind the store's back.
        if record is None:
            return None
        # Every field but data is immutable (str, number, None): a shallow copy of the fields
        # suffices, made without dataclasses.replace(), which costs ~6x more per request.
        clone = object.__new__(SessionRecord)
        clone.__dict__.update(record.__dict__)
        clone.data = copy.deepcopy(record.data) if record.data else {}
        clone.cookie_jars = copy.deepcopy(record.cookie_jars) if record.cookie_jars else {}
        return clone

    async def touch(self, session_id: str, touched_at: float, expires_at: float) -> None:
        record = self._sessions.get(session_id)
        if record is not None:
            record.touched_at = max(record.touched_at, touched_at)
            if expires_at > record.expires_at:
                record.expires_at = expires_at
                self._note_expiry(session_id, expires_at)

    async def delete(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None

    async def replace_data(self, session_id: str, data: dict) -> bool:
        record = self._sessions.get(session_id)
        if record is None:
            return False
        record.data = copy.deepcopy(data)
        return True

    async def update_data(self, session_id: str, set_fields: dict, unset_fields: list[str],
                          max_bytes: int | None = None) -> bool:
        record = self._sessions.get(session_id)
        if record is None:
            return False
        if max_bytes is not None:
            merged = record.data | set_fields
            for key in unset_fields:
                merged.pop(key, None)
            if (size := data_size(merged)) > max_bytes:
                raise DataTooLarge(size)
        record.data.update(copy.deepcopy(set_fields))
        for key in unset_fields:
            record.data.pop(key, None)
        return True

    async def update_cookie_jar(self, session_id: str, jar: str, set_cookies: dict,
                                unset_cookies: list[str], max_bytes: int | None = None) -> bool:
        record = self._sessions.get(session_id)
        if record is None:
            return False
        cookies = record.cookie_jars.get(jar, {}) | copy.deepcopy(set_cookies)
        for key in unset_cookies:
            cookies.pop(key, None)
        if max_bytes is not None and (size := data_size(cookies)) > max_bytes:
            raise DataTooLarge(size)
        record.cookie_jars = record.cookie_jars | {jar: cookies}
        return True

    async def session_key(self, app: str, openid: str) -> str | None:
        user = self._users.get(user_key(app, openid))
        return user.session_key if user else None

    async def session_keys(self, app: str, openid: str) -> SessionKeys | None:
        user = self._users.get(user_key(app, openid))
        if user is None:
            return None
        return SessionKeys(user.session_key, user.previous_session_key,
                           user.session_key_replaced_at)

    async def replace_session_key(self, app: str, openid: str, sealed_session_key: str,
                                  now: float, session_key_id: str | None = None) -> bool:
        user = self._users.get(user_key(app, openid))
        if user is None:
            return False
        user.new_session_key(sealed_session_key, session_key_id, now)
        return True

    async def set_phone(self, app: str, openid: str, phone: VerifiedPhone) -> bool:
        user = self._users.get(user_key(app, openid))
        if user is None:
            return False
        user.phone = phone
        return True

    async def phone(self, app: str, openid: str) -> VerifiedPhone | None:
        user = self._users.get(user_key(app, openid))
        return user.phone if user else None

    async def rename(self, session_id: str, new_id: str) -> SessionRecord | None:
        record = self._sessions.pop(session_id, None)
        if record is None:
            return None
        record.id = new_id
        self._sessions[new_id] = record
        self._note_expiry(new_id, record.expires_at)
        return copy.deepcopy(record)

    def _matching(self, app, openid, user_id, unionid):
        if openid is None and user_id is None and unionid is None:
            raise ValueError("an openid, user_id or unionid is required")  # never "every session"
        if openid is not None and app is None:
            raise ValueError("an openid names an identity only with its app")
        return [sid for sid, record in self._sessions.items()
                if (app is None or record.app == app)
                and (openid is None or record.openid == openid)
                and (user_id is None or record.user_id == user_id)
                and (unionid is None or record.unionid == unionid)]

    def _set_user_id(self, app: str, openid: str, user_id) -> None:
        for record in self._sessions.values():
            if record.openid == openid and record.app == app:
                record.user_id = user_id

    async def bind(self, app: str, openid: str, user_id, now: float) -> None:
        self._users.setdefault(user_key(app, openid), _User()).binding = Binding(user_id, now)
        self._set_user_id(app, openid, user_id)

    async def unbind(self, app: str, openid: str) -> bool:
        user = self._users.get(user_key(app, openid))
        if user is None or user.binding is None:
            return False
        user.binding = None
        self._set_user_id(app, openid, None)
        return True

    async def binding(self, app: str, openid: str) -> Binding | None:
        user = self._users.get(user_key(app, openid))
        return user.binding if user else None

    async def identities_with_unionid(self, unionid: str) -> list[tuple[str, str]]:
        return [tuple(key.split(":", 1)) for key, user in self._users.items()
                if user.unionid == unionid]

    async def bind_unionid(self, unionid: str, user_id: str, now: float) -> None:
        self._unionid_bindings[unionid] = Binding(user_id, now)

    async def unbind_unionid(self, unionid: str) -> bool:
        return self._unionid_bindings.pop(unionid, None) is not None

    async def unionid_binding(self, unionid: str) -> Binding | None:
        return self._unionid_bindings.get(unionid)

    async def list_sessions(self, now: float, app=None, openid=None, user_id=None, unionid=None,
                            limit: int = 1000) -> list[SessionRecord]:
        live = [self._sessions[sid] for sid in self._matching(app, openid, user_id, unionid)
                if self._sessions[sid].expires_at > now]
        live.sort(key=lambda record: record.created_at)
        return copy.deepcopy(live[:limit])

    async def delete_sessions(self, app=None, openid=None, user_id=None, unionid=None) -> int:
        doomed = self._matching(app, openid, user_id, unionid)
        for sid in doomed:
            del self._sessions[sid]
        return len(doomed)

    async def revoke_handle(self, handle: str, now: float) -> bool:
        # A scan: an admin call, rare next to the requests a handle index would slow down.
        doomed = [sid for sid, record in self._sessions.items() if record.handle == handle]
        for sid in doomed:
            del self._sessions[sid]
        return bool(doomed)

    async def purge_expired(self, now: float) -> int:
        expired = [sid for sid, record in self._sessions.items() if record.expires_at <= now]
        for sid in expired:
            del self._sessions[sid]
        self._prune_users()
        # A dict keeps its table at its largest size after deletions: copies are sized to what
        # is left (O(n), as the scan above, once per purge interval).
        self._sessions, self._users = dict(self._sessions), dict(self._users)
        self._rebuild_expiries()
        return len(expired)

    # -- access_tokens (per process: one server's lease is always free of others) ----------

    async def app_token(self, app: str) -> StoredAppToken | None:
        return self._app_tokens.get(app)

    async def take_token_lease(self, app: str, holder: str, now: float,
                               lease_time: float) -> bool:
        held = self._token_leases.get(app)
        if held is not None and held[1] > now and held[0] != holder:
            return False
        self._token_leases[app] = (holder, now + lease_time)
        return True

    async def release_token_lease(self, app: str, holder: str) -> None:
        if self._token_leases.get(app, ("",))[0] == holder:
            del self._token_leases[app]

    async def save_app_token(self, app: str, token: StoredAppToken, holder: str,
                             now: float) -> bool:
        held = self._token_leases.get(app)
        if held is None or held[0] != holder or held[1] <= now:
            return False
        self._app_tokens[app] = token
        return True

    async def expire_app_token(self, app: str, fingerprint: str) -> bool:
        token = self._app_tokens.get(app)
        if token is None or token.fingerprint != fingerprint:
            return False
        self._app_tokens[app] = StoredAppToken(token.sealed_value, token.fingerprint, 0.0)
        return True

    # -- bounds ----------------------------------------------------------------------------

    def _note_expiry(self, session_id: str, expires_at: float) -> None:
        heapq.heappush(self._expiries, (expires_at, session_id))
        if len(self._expiries) > 2 * len(self._sessions) + 1024:
            self._rebuild_expiries()  # mostly outdated entries (slid expiries, ended sessions)

    def _rebuild_expiries(self) -> None:
        self._expiries = [(record.expires_at, sid) for sid, record in self._sessions.items()]
        heapq.heapify(self._expiries)

    def _evict(self, count: int, now: float) -> None:
        """End the ``count`` sessions closest to expiry (expired ones first)."""
        evicted = 0
        while evicted < count:
            if not self._expiries:
                self._rebuild_expiries()  # an entry went missing: every session has one again
            expires_at, sid = heapq.heappop(self._expiries)
            record = self._sessions.get(sid)
            if record is not None and record.expires_at == expires_at:
                del self._sessions[sid]
                evicted += 1
        if self._warned_full_at is None or now - self._warned_full_at >= EVICTION_LOG_INTERVAL:
            self._warned_full_at = now
            log.warning("memory store full (store.max_sessions = %d): logins end the sessions "
                        "closest to expiry", self._max_sessions)

    def _prune_users(self) -> None:
        """Forget users with no session left and no binding: nothing of theirs is needed."""
        owners = {user_key(record.app, record.openid) for record in self._sessions.values()}
        for key in [key for key, user in self._users.items()
                    if user.binding is None and key not in owners]:
            del self._users[key]
