"""Login, the session itself (check, logout) and its data."""

from datetime import UTC, datetime

from handlers.base import ApiHandler
from server.errors import ApiError


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


def describe(record, now: float) -> dict:
    """The public view of a session: never its session_key."""
    view = {
        "openid": record.openid,
        "created_at": iso(record.created_at),
        "expires_at": iso(record.expires_at),
        "expires_in": max(0, round(record.expires_at - now)),
    }
    if record.unionid:
        view["unionid"] = record.unionid
    return view


class LoginHandler(ApiHandler):
    """``POST /login`` (or ``GET /login?code=``): exchange a wx.login() code for a session."""

    async def post(self) -> None:
        code = self.get_query_argument("code", None)
        if code is None:
            code = self.body_field("code")
        await self._login(code)

    async def get(self) -> None:
        await self._login(self.get_query_argument("code", None))

    async def _login(self, code) -> None:
        session, reused = await self.ctx.service.login(code)
        now = self.ctx.service.clock.now()
        record = session.record
        self.send_session_id(session.token, round(record.expires_at - now))
        # "sessionid" repeats the id for the many clients copied from tutorials that read
        # res.data.sessionid.
        self.write_json({"session_id": session.token, "sessionid": session.token,
                         "reused": reused, **describe(record, now)})


class SessionHandler(ApiHandler):
    """``GET /session``: is our session still valid (and slide it); ``DELETE``: log out."""

    async def get(self) -> None:
        session = await self.current_session()
        self.write_json(describe(session.record, self.ctx.service.clock.now()))

    async def delete(self) -> None:
        candidates = self.session_candidates()
        if not candidates:
            raise ApiError(401, "no_session", "no session id was sent")
        if not await self.ctx.service.revoke_token(candidates):
            raise ApiError(401, "invalid_session", "the session id is not valid")
        self.clear_session_cookie()
        self.set_status(204)
        self.finish()


class SessionDataHandler(ApiHandler):
    """``/session/data``: a JSON object the app keeps in the session.

    ``GET`` reads it, ``PUT`` replaces it, ``PATCH`` merges top-level keys (``null`` removes one).
    """

    async def get(self) -> None:
        session = await self.current_session()
        self.write_json(session.record.data)

    async def put(self) -> None:
        body = self.json_object()
        session = await self.current_session()
        self.write_json(await self.ctx.service.replace_data(session, body))

    async def patch(self) -> None:
        body = self.json_object()
        session = await self.current_session()
        self.write_json(await self.ctx.service.merge_data(session, body))
