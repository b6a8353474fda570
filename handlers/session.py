"""Login, the session itself (check, logout) and its data."""

import functools
import time

from handlers.base import ApiHandler
from server import metrics
from server.http.client_address import client_address
from server.sessions import is_anonymous


# A session's created_at never changes and its expires_at only at a slide (touch_after): the
# same few values are formatted on request after request.
@functools.lru_cache(maxsize=4096)
def iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def describe(record, now: float) -> dict:
    """The public view of a session: never its session_key."""
    view = {
        "app": record.app,
        "openid": record.openid,
        # An anonymous login (Douyin's anonymousCode): openid is "anon:<anonymous_openid>".
        "anonymous": is_anonymous(record.openid),
        "created_at": iso(record.created_at),
        "expires_at": iso(record.expires_at),
        "expires_in": max(0, round(record.expires_at - now)),
    }
    if record.unionid:
        view["unionid"] = record.unionid
    # The company's own account bound to this identity (PUT /admin/apps/{app}/bindings/{openid}).
    view["bound"] = record.user_id is not None
    view["user_id"] = record.user_id
    return view


def send_session(handler: ApiHandler, session, **extra) -> None:
    """Answer with a session's id (cookie, header and body) and its public view."""
    handler.send_session_id(session.token, handler.seconds_left(session))
    # "sessionid" repeats the id for the many clients copied from tutorials that read
    # res.data.sessionid.
    handler.write_json({"session_id": session.token, "sessionid": session.token,
                        **extra, **describe(session.record, handler.ctx.service.clock.now())})


class LoginHandler(ApiHandler):
    """``POST /login/{app}`` (or ``GET /login/{app}?code=``): exchange a login code of that
    app's platform for a session. ``/login`` logs in to the only (or the default) app."""

    async def post(self, app: str | None = None) -> None:
        await self._login(app, self._field("code"), self._field("anonymous_code"))

    async def get(self, app: str | None = None) -> None:
        await self._login(app, self.get_query_argument("code", None),
                          self.get_query_argument("anonymous_code", None))

    def _field(self, name: str):
        value = self.get_query_argument(name, None)
        return self.body_field(name) if value is None else value

    async def _login(self, app, code, anonymous_code) -> None:
        # Before anything else: a flood must not reach the platform (its quota) nor the store.
        self.ctx.login_limits.check(self.client_address())
        # The ids it carries: an anonymous session among them carries over to this login.
        session, reused = await self.ctx.service.login(
            app, code, client_ip=self.client_address(),
            user_agent=self.request.headers.get("User-Agent"), anonymous_code=anonymous_code,
            current=self.session_candidates())
        self.log_app = session.app
        metrics.count_login(session.app, reused)
        send_session(self, session, reused=reused)

    def client_address(self) -> str:
        return client_address(self.request.remote_ip,
                              self.request.headers.get_list("X-Forwarded-For"),
                              self.ctx.trusted_proxies)


class SessionHandler(ApiHandler):
    """``GET /session``: is our session still valid (and slide it); ``DELETE``: log out."""

    async def get(self) -> None:
        session = await self.current_session()
        self.write_json(describe(session.record, self.ctx.service.clock.now()))

    async def delete(self) -> None:
        await self.ctx.service.logout(self.session_candidates())
        self.clear_session_cookie()
        self.set_status(204)
        self.finish()


class RotateHandler(ApiHandler):
    """``POST /session/rotate``: the same session under a fresh id; the old id stops working.

    Call it when a session gains privileges (the user signed in to an account, became an
    admin...), so that an id seen before that moment is worth nothing after it.
    """

    async def post(self) -> None:
        session = await self.current_session()
        send_session(self, await self.ctx.service.rotate(session))


class SessionDataHandler(ApiHandler):
    """``/session/data``: a JSON object the app keeps in the session.

    ``GET`` reads it, ``PUT`` replaces it, ``POST`` merges top-level keys (``null`` removes
    one). ``PATCH`` merges too, for callers other than mini-programs: ``wx.request`` cannot
    send PATCH.
    """

    async def get(self) -> None:
        session = await self.current_session()
        self.write_json(session.record.data)

    async def put(self) -> None:
        body = self.json_object()
        session = await self.current_session()
        self.write_json(await self.ctx.service.replace_data(session, body))

    async def post(self) -> None:
        body = self.json_object()
        session = await self.current_session()
        self.write_json(await self.ctx.service.merge_data(session, body))

    patch = post
