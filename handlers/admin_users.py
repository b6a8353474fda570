"""The app's backend on one identity: ``GET /admin/apps/{app}/users/{openid}`` (what is known
of it, its platform-verified phone number included; never a key) and ``POST
/admin/apps/{app}/users/{openid}/session_key/reset`` (the platform issues a new session_key)."""

from handlers.admin import AdminHandler, _check_id, phone_view


class _UserHandler(AdminHandler):
    def prepare(self) -> None:
        super().prepare()
        app, openid = self.path_args
        _check_id("openid", openid)
        self.app, self.openid = self.ctx.service.check_app(app), openid


class UserHandler(_UserHandler):
    """``GET /admin/apps/{app}/users/{openid}``."""

    async def get(self, *_) -> None:
        summary = await self.ctx.service.user_summary(self.app, self.openid)
        binding = summary.binding
        self.write_json({
            "app": summary.app, "openid": summary.openid, "unionid": summary.unionid,
            "bound": binding is not None, "user_id": binding.user_id if binding else None,
            "holds_session_key": summary.holds_session_key,
            "live_sessions": summary.live_sessions,
            "phone": phone_view(await self.ctx.platform_calls.verified_phone(self.app,
                                                                             self.openid)),
        })


class SessionKeyResetHandler(_UserHandler):
    """``POST /admin/apps/{app}/users/{openid}/session_key/reset`` -> ``{"reset": true}``."""

    async def post(self, *_) -> None:
        await self.ctx.platform_calls.reset_session_key(self.app, self.openid)
        self.write_json({"reset": True})
