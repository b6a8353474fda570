"""For those who extend minisession in Python: a base for your own Tornado handlers.

A handler that derives from :class:`SessionRequestHandler` gets the caller's live session as
``self.current_user`` (an :class:`server.sessions.ActiveSession`: ``.openid``, ``.user_id``,
``.data``, ``.record``), read from ``Cookie`` or ``X-Session`` exactly as minisession's own
endpoints read it, with the same sliding expiry. ``@tornado.web.authenticated`` then answers
minisession's 401 JSON (``no_session``, ``invalid_session`` or ``session_expired``) instead of
a redirect to a login page or a bare 403::

    class OrdersHandler(SessionRequestHandler):
        @tornado.web.authenticated
        async def get(self):
            user = self.current_user
            self.write_json({"openid": user.openid, "user_id": user.user_id})

    app = Minisession(config, extra_routes=[(r"/orders", OrdersHandler)])
"""

import tornado.web

from handlers.base import ApiHandler
from handlers.errors import api_error
from server.errors import NoSession, NotAuthenticated


class SessionRequestHandler(ApiHandler):
    """``self.current_user`` is the caller's session, or None when it has none."""

    _session_error: NotAuthenticated | None = None

    async def prepare(self) -> None:
        super().prepare()
        try:
            self.current_user = await self.current_session()
        except NotAuthenticated as exc:  # a store outage (503) is not "logged out"
            self._session_error = exc
            self.current_user = None

    def get_login_url(self) -> str:
        # @authenticated asks for a login page on GET: a mini-program needs the 401 instead.
        raise self._session_error or NoSession("log in first")

    def send_error(self, status_code: int = 500, **kwargs) -> None:
        # @authenticated refuses other methods with a bare 403: answer the 401 it stands for.
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if (status_code == 403 and type(exc) is tornado.web.HTTPError
                and self.current_user is None and self._session_error is not None):
            error = api_error(self._session_error)
            kwargs["exc_info"] = (type(error), error, None)
            status_code = error.status
        super().send_error(status_code, **kwargs)
