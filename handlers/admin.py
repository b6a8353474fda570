"""The app's backend talks to minisession here: introspection, bindings, revocation.

Every call needs ``Authorization: Bearer <key>`` with one of ``admin.api_keys``: 401 without
one, 403 with a wrong one. With ``admin.enabled = false`` (the default) none of these paths
exists (404).
"""

import functools
import hashlib
import hmac
import re

from handlers.base import ApiHandler
from handlers.session import describe, iso
from server.errors import ApiError

# A listing handle is a session's first storage key: base64url of a SHA-256.
_HANDLE = re.compile(r"[A-Za-z0-9_-]{43}")
_TRUE = (True, "true", "1", "yes")


def _digest(key: str) -> bytes:
    # Compared as digests: equal lengths, so compare_digest's time says nothing about the key.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


@functools.cache
def _known_digests(api_keys: tuple[str, ...]) -> tuple[bytes, ...]:
    # The configured keys are hashed once per configuration, not on every request.
    return tuple(_digest(key) for key in api_keys)


class AdminHandler(ApiHandler):
    """Base of the admin API: checks the API key before anything else."""

    def prepare(self) -> None:
        admin = self.ctx.config.admin
        if not admin.enabled:
            raise ApiError(404, "not_found", f"nothing here: {self.request.path[:100]}")
        super().prepare()
        scheme, _, key = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, "missing_api_key",
                           "send an admin API key as 'Authorization: Bearer <key>'",
                           headers={"WWW-Authenticate": 'Bearer realm="minisession"'})
        sent = _digest(key.strip())
        valid = False
        for known in _known_digests(admin.api_keys):
            valid |= hmac.compare_digest(sent, known)  # no early exit
        if not valid:
            raise ApiError(403, "invalid_api_key", "this API key is not valid")

    def owner_filter(self) -> dict:
        """``?openid=`` and/or ``?user_id=`` from the query; at least one is required."""
        openid = self.get_query_argument("openid", None)
        user_id = self.get_query_argument("user_id", None)
        if not openid and not user_id:
            raise ApiError(400, "missing_filter", "give ?openid= or ?user_id= (or both)")
        return {"openid": openid or None, "user_id": user_id or None}


class IntrospectHandler(AdminHandler):
    """``POST /introspect`` with ``token`` (JSON or form, as in RFC 7662): who is this?

    The id travels in the body, never in the URL, so it stays out of access logs. Add
    ``touch: true`` to slide the session's expiry as a use of it would.
    """

    async def post(self) -> None:
        token = self.body_field("token")
        if token is None:
            token = self.body_field("session_id")
        if not isinstance(token, str) or not token:
            raise ApiError(400, "missing_token", "send the session id as 'token' in the body")
        touch = self.body_field("touch") in _TRUE
        session = await self.ctx.service.introspect(token, touch=touch)
        if session is None:
            self.write_json({"active": False})
            return
        record = session.record
        now = self.ctx.service.clock.now()
        self.write_json({
            "active": True, **describe(record, now),
            "unionid": record.unionid, "data": record.data,
            # RFC 7662 names, for OAuth client libraries.
            "sub": record.openid, "iat": int(record.created_at), "exp": int(record.expires_at),
        })


class BindingHandler(AdminHandler):
    """``/admin/bindings/{openid}``: ``PUT {"user_id": ...}`` binds, ``DELETE`` unbinds."""

    def prepare(self) -> None:
        super().prepare()
        openid = self.path_args[0]
        if not 0 < len(openid) <= 128 or not openid.isprintable():
            raise ApiError(400, "invalid_openid", "an openid is 1-128 printable characters")

    async def get(self, openid: str) -> None:
        binding = await self.ctx.service.binding(openid)
        if binding is None:
            self.write_json({"openid": openid, "bound": False, "user_id": None})
            return
        self.write_json({"openid": openid, "bound": True, "user_id": binding.user_id,
                         "bound_at": iso(binding.bound_at)})

    async def put(self, openid: str) -> None:
        body = self.json_object()
        if "user_id" not in body:
            raise ApiError(400, "invalid_user_id", "send {\"user_id\": ...}")
        await self.ctx.service.bind(openid, body["user_id"])
        await self.get(openid)

    async def delete(self, openid: str) -> None:
        await self.ctx.service.unbind(openid)
        self.set_status(204)
        self.finish()


class SessionsHandler(AdminHandler):
    """``/admin/sessions?openid=...`` or ``?user_id=...``: ``GET`` lists the live sessions
    (never their ids), ``DELETE`` ends them all."""

    async def get(self) -> None:
        records = await self.ctx.service.sessions_of(**self.owner_filter())
        self.write_json({"sessions": [{
            "handle": record.handle,
            "openid": record.openid,
            "user_id": record.user_id,
            "created_at": iso(record.created_at),
            # Last use, to within session.touch_after (uses inside it are not written).
            "last_used_at": iso(record.touched_at),
            "expires_at": iso(record.expires_at),
            "client_ip": record.client_ip,
            "user_agent": record.user_agent,
        } for record in records]})

    async def delete(self) -> None:
        revoked = await self.ctx.service.revoke_all(**self.owner_filter())
        self.write_json({"revoked": revoked})


class SessionByHandleHandler(AdminHandler):
    """``DELETE /admin/sessions/{handle}``: end one session, by the handle its listing gave."""

    async def delete(self, handle: str) -> None:
        if not _HANDLE.fullmatch(handle) or not await self.ctx.service.revoke_handle(handle):
            raise ApiError(404, "no_such_session", "no live session has this handle")
        self.set_status(204)
        self.finish()
