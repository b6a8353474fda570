"""In-process session store: the embedded default.

Single process only and lost on restart: fine for development and tests, not for production
(use ``backend = "mongodb"``). Each method runs without awaiting, so on one event loop every
method is atomic, which is what the contract's concurrency guarantees need.
"""

import copy

from server.stores.base import (
    Binding,
    LoginOutcome,
    SessionRecord,
    DataTooLarge,
    SessionStore,
    UserLogin,
    data_size,
)


class _User:
    __slots__ = ("binding", "recent_at", "recent_sealed_id", "recent_session_id", "session_key")

    def __init__(self) -> None:
        self.session_key: str | None = None
        self.recent_session_id: str | None = None
        self.recent_sealed_id = ""
        self.recent_at = 0.0
        self.binding: Binding | None = None


class MemoryStore(SessionStore):
    def __init__(self) -> None:
        self._sessions: dict[str, SessionRecord] = {}
        self._users: dict[str, _User] = {}

    async def login(self, login: UserLogin, candidate: SessionRecord, reuse_since: float | None,
                    now: float) -> LoginOutcome:
        user = self._users.setdefault(login.openid, _User())
        user.session_key = login.sealed_session_key
        if reuse_since is not None and user.recent_at >= reuse_since:
            recent = self._sessions.get(user.recent_session_id)
            if recent is not None and recent.expires_at > now:
                return LoginOutcome(copy.deepcopy(recent), True, user.recent_sealed_id)
        candidate.user_id = user.binding.user_id if user.binding else None
        self._sessions[candidate.id] = copy.deepcopy(candidate)
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
        return clone

    async def touch(self, session_id: str, touched_at: float, expires_at: float) -> None:
        record = self._sessions.get(session_id)
        if record is not None:
            record.touched_at = max(record.touched_at, touched_at)
            record.expires_at = max(record.expires_at, expires_at)

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

    async def session_key(self, openid: str) -> str | None:
        user = self._users.get(openid)
        return user.session_key if user else None

    async def rename(self, session_id: str, new_id: str) -> SessionRecord | None:
        record = self._sessions.pop(session_id, None)
        if record is None:
            return None
        record.id = new_id
        self._sessions[new_id] = record
        return copy.deepcopy(record)

    def _matching(self, openid, user_id):
        if openid is None and user_id is None:
            raise ValueError("an openid or a user_id is required")  # never "every session"
        return [sid for sid, record in self._sessions.items()
                if (openid is None or record.openid == openid)
                and (user_id is None or record.user_id == user_id)]

    def _set_user_id(self, openid: str, user_id) -> None:
        for record in self._sessions.values():
            if record.openid == openid:
                record.user_id = user_id

    async def bind(self, openid: str, user_id, now: float) -> None:
        self._users.setdefault(openid, _User()).binding = Binding(user_id, now)
        self._set_user_id(openid, user_id)

    async def unbind(self, openid: str) -> bool:
        user = self._users.get(openid)
        if user is None or user.binding is None:
            return False
        user.binding = None
        self._set_user_id(openid, None)
        return True

    async def binding(self, openid: str) -> Binding | None:
        user = self._users.get(openid)
        return user.binding if user else None

    async def list_sessions(self, now: float, openid=None, user_id=None,
                            limit: int = 1000) -> list[SessionRecord]:
        live = [self._sessions[sid] for sid in self._matching(openid, user_id)
                if self._sessions[sid].expires_at > now]
        live.sort(key=lambda record: record.created_at)
        return copy.deepcopy(live[:limit])

    async def delete_sessions(self, openid=None, user_id=None) -> int:
        doomed = self._matching(openid, user_id)
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
        return len(expired)
