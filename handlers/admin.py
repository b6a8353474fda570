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
from handlers.errors import ApiError
from server.sessions import is_anonymous

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

    def owner_filter(self, app: str | None) -> dict:
        """``?openid=``, ``?user_id=`` and/or ``?unionid=`` from the query (at least one),
        within ``app`` (the path's, or ``?app=``; an openid without one: the default app)."""
        given = {name: self.get_query_argument(name, None) or None
                 for name in ("app", "openid", "user_id", "unionid")}
        if not (given["openid"] or given["user_id"] or given["unionid"]):
            raise ApiError(400, "missing_filter",
                           "give ?openid=, ?user_id= or ?unionid= (or several)")
        if app is not None:
            given["app"] = app
        return given


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
        phone = await self.ctx.platform_calls.verified_phone(record.app, record.openid)
        self.write_json({
            "active": True, **describe(record, now),  # with the app
            "unionid": record.unionid, "data": record.data,
            # The number the platform verified (POST /platform/phone), never the client's word.
            "phone": phone_view(phone),
            # RFC 7662 names, for OAuth client libraries.
            "sub": record.openid, "iat": int(record.created_at), "exp": int(record.expires_at),
        })


def phone_view(phone: dict | None) -> dict | None:
    """A platform-verified phone as the admin API shows it: ``verified_at`` in ISO 8601."""
    if phone is None:
        return None
    return {**phone, "verified_at": iso(phone["verified_at"])}


def _check_id(name: str, value: str) -> None:
    if not 0 < len(value) <= 128 or not value.isprintable():
        raise ApiError(400, f"invalid_{name}", f"an {name} is 1-128 printable characters")


def _user_id_of(body: dict):
    if "user_id" not in body:
        raise ApiError(400, "invalid_user_id", "send {\"user_id\": ...}")
    return body["user_id"]


class BindingHandler(AdminHandler):
    """``/admin/apps/{app}/bindings/{openid}`` (``/admin/bindings/{openid}``: the default
    app): ``PUT {"user_id": ...}`` binds the identity, ``DELETE`` unbinds, ``GET`` shows."""

    def prepare(self) -> None:
        super().prepare()
        *app, openid = self.path_args
        _check_id("openid", openid)
        self.app = self.ctx.service.check_app(app[0] if app else None)

    async def get(self, *_) -> None:
        openid = self.path_args[-1]
        binding = await self.ctx.service.binding(self.app, openid)
        view = {"app": self.app, "openid": openid}
        if binding is None:
            self.write_json({**view, "bound": False, "user_id": None})
            return
        self.write_json({**view, "bound": True, "user_id": binding.user_id,
                         "bound_at": iso(binding.bound_at)})

    async def put(self, *_) -> None:
        user_id = _user_id_of(self.json_object())
        await self.ctx.service.bind(self.app, self.path_args[-1], user_id)
        await self.get()

    async def delete(self, *_) -> None:
        await self.ctx.service.unbind(self.app, self.path_args[-1])
        self.set_status(204)
        self.finish()


class UnionidBindingHandler(AdminHandler):
    """``/admin/unionids/{unionid}/binding``: one person across the company's apps.

    ``PUT {"user_id": ...}`` binds every identity with this unionid, in every app (those that
    logged in with it, and those that will); ``GET`` shows it; ``DELETE`` undoes it.
    """

    def prepare(self) -> None:
        super().prepare()
        _check_id("unionid", self.path_args[0])

    async def get(self, unionid: str) -> None:
        binding = await self.ctx.service.unionid_binding(unionid)
        if binding is None:
            self.write_json({"unionid": unionid, "bound": False, "user_id": None})
            return
        self.write_json({"unionid": unionid, "bound": True, "user_id": binding.user_id,
                         "bound_at": iso(binding.bound_at)})

    async def put(self, unionid: str) -> None:
        user_id = _user_id_of(self.json_object())
        user_id, identities = await self.ctx.service.bind_unionid(unionid, user_id)
        self.write_json({"unionid": unionid, "bound": True, "user_id": user_id, "identities": [
            {"app": app, "openid": openid} for app, openid in identities]})

    async def delete(self, unionid: str) -> None:
        await self.ctx.service.unbind_unionid(unionid)
        self.set_status(204)
        self.finish()


class SessionsHandler(AdminHandler):
    """``/admin/apps/{app}/sessions?openid=...`` (or ``/admin/sessions?app=&openid=``), or
    ``?user_id=...`` or ``?unionid=...``: ``GET`` lists the live sessions (never their ids),
    ``DELETE`` ends them all."""

    async def get(self, app: str | None = None) -> None:
        records = await self.ctx.service.sessions_of(**self.owner_filter(app))
        self.write_json({"sessions": [{
            "handle": record.handle,
            "app": record.app,
            "openid": record.openid,
            "anonymous": is_anonymous(record.openid),
            "unionid": record.unionid,
            "user_id": record.user_id,
            "created_at": iso(record.created_at),
            # Last use, to within session.touch_after (uses inside it are not written).
            "last_used_at": iso(record.touched_at),
            "expires_at": iso(record.expires_at),
            "client_ip": record.client_ip,
            "user_agent": record.user_agent,
        } for record in records]})

    async def delete(self, app: str | None = None) -> None:
        revoked = await self.ctx.service.revoke_all(**self.owner_filter(app))
        self.write_json({"revoked": revoked})


class SessionByHandleHandler(AdminHandler):
    """``DELETE /admin/sessions/{handle}``: end one session, by the handle its listing gave."""

    async def delete(self, handle: str) -> None:
        if not _HANDLE.fullmatch(handle) or not await self.ctx.service.revoke_handle(handle):
            raise ApiError(404, "no_such_session", "no live session has this handle")
        self.set_status(204)
        self.finish()


class AccessTokenHandler(AdminHandler):
    """``GET /admin/apps/{app}/access_token``: the app's one access_token, for the backend's
    own calls to its platform, so that it never fetches a competing one."""

    async def get(self, app: str) -> None:
        app = self.ctx.service.check_app(app)
        self.log_app = app
        token = await self.ctx.service.access_tokens.current(app, recheck_store=True)
        now = self.ctx.service.clock.now()
        self.write_json({"access_token": token.value, "expires_in": token.expires_in(now)})


class RefusedAccessTokenHandler(AdminHandler):
    """``POST /admin/apps/{app}/access_token/refused`` ``{"access_token": ...}``: the backend
    reports the token the platform refused (40001, 42001) -> the token to use now: a new one
    if the reported one was still current (compare-and-expire), else the current one."""

    async def post(self, app: str) -> None:
        app = self.ctx.service.check_app(app)
        self.log_app = app
        token = await self.ctx.service.access_tokens.refused(app, self.body_field("access_token"))
        now = self.ctx.service.clock.now()
        self.write_json({"access_token": token.value, "expires_in": token.expires_in(now)})
