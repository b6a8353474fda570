"""The platform's server-side calls about one user, with the app's access_token: the phone
number behind a ``getPhoneNumber`` code, whether the stored session_key is still valid, and
its reset. No HTTP here (handlers/platform_data.py and handlers/admin_users.py serve them).

The phone number is the platform's answer, never the client's word: it is recorded, sealed
(``phone`` purpose, bound to the identity), as *verified by the platform* for the backend to
read (:meth:`PlatformCalls.verified_phone`). Only platforms whose access_token minisession
holds have these calls (WeChat); others answer 409 ``not_supported``.
"""

import json

from server.errors import AccessTokenUnsupported, InvalidInput, SessionKeyUnavailable
from server.platforms.base import PhoneNumber
from server.sessions import ActiveSession, SessionService, _sealing_context, session_key_id
from server.stores.base import VerifiedPhone

MAX_PHONE_CODE_LENGTH = 256


class PlatformCalls:
    def __init__(self, service: SessionService):
        self.service = service

    def _provider(self, app: str):
        provider = self.service.providers[app]
        if not provider.supports_access_token:
            raise AccessTokenUnsupported(app, provider.credentials.platform)
        return provider

    # -- for the mini-program -----------------------------------------------------------------

    async def phone_number(self, session: ActiveSession, code) -> PhoneNumber:
        """The number behind the client's ``getPhoneNumber`` code, recorded as verified."""
        app, openid = session.app, session.openid
        provider = self._provider(app)
        code = _phone_code(code)
        phone = await self.service.access_tokens.call(
            app, lambda token: provider.phone_number(token, code, openid))
        now = self.service.clock.now()
        sealed = self.service.sealer.seal(json.dumps(phone.as_json()),
                                          _sealing_context("phone", app, openid))
        await self.service.users.set_phone(app, openid, VerifiedPhone(sealed, now))
        return phone

    async def session_key_valid(self, session: ActiveSession) -> bool:
        """Whether the platform still holds the stored session_key as the user's."""
        app, openid = session.app, session.openid
        provider = self._provider(app)
        key = await self._session_key(app, openid)
        return await self.service.access_tokens.call(
            app, lambda token: provider.check_session_key(token, openid, key))

    # -- for the app's backend ------------------------------------------------------------------

    async def reset_session_key(self, app: str, openid: str) -> None:
        """Have the platform issue the user a new session_key and store it (sealed); the one
        it replaces stays usable for ``session.session_key_grace``."""
        app = self.service.check_app(app)
        provider = self._provider(app)
        key = await self._session_key(app, openid)
        new_key = await self.service.access_tokens.call(
            app, lambda token: provider.reset_session_key(token, openid, key))
        sealed = self.service.sealer.seal(new_key, _sealing_context("session_key", app, openid))
        if not await self.service.users.replace_session_key(
                app, openid, sealed, self.service.clock.now(), session_key_id(new_key)):
            raise SessionKeyUnavailable()

    async def verified_phone(self, app: str, openid: str) -> dict | None:
        """``{phoneNumber, purePhoneNumber, countryCode, verified_at}`` as the platform last
        verified it for the identity (``verified_at``: epoch seconds); None if none."""
        stored = await self.service.users.phone(app, openid)
        if stored is None:
            return None
        plain = self.service.sealer.open(stored.sealed, _sealing_context("phone", app, openid))
        if plain is None:
            return None  # sealed with a key no longer configured (or moved): not this user's
        return {**json.loads(plain), "verified_at": stored.verified_at}

    async def _session_key(self, app: str, openid: str) -> str:
        key = await self.service.session_key(app, openid)
        if key is None:
            raise SessionKeyUnavailable()
        return key


def _phone_code(code) -> str:
    if code is None or code == "":
        raise InvalidInput("missing_code", "send the code from the getPhoneNumber button's "
                                           "event (e.detail.code) as 'code'")
    if not isinstance(code, str) or len(code) > MAX_PHONE_CODE_LENGTH or not code.isprintable():
        raise InvalidInput("code_invalid", f"code must be a printable string of at most "
                                           f"{MAX_PHONE_CODE_LENGTH} characters")
    return code
