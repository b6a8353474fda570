"""What the mini-program got from its platform, checked with the session's session_key:
``POST /platform/decrypt`` and ``POST /platform/verify`` (JSON or form bodies); and the
platform's calls about the session's user: ``POST /platform/phone``, ``GET /platform/check``."""

from handlers.base import ApiHandler


class DecryptHandler(ApiHandler):
    """``POST /platform/decrypt`` ``{encryptedData, iv}`` -> ``{"data": {...}, "watermark":
    {"timestamp": ...}}``: the platform's plaintext, its watermark checked and taken out."""

    async def post(self) -> None:
        session = await self.current_session()
        data, watermark = await self.ctx.service.decrypt_user_data(
            session, self.body_field("encryptedData"), self.body_field("iv"))
        self.write_json({"data": data, "watermark": watermark})


class VerifyHandler(ApiHandler):
    """``POST /platform/verify`` ``{rawData, signature}`` -> ``{"valid": true}``, or a 400
    ``signature_mismatch``."""

    async def post(self) -> None:
        session = await self.current_session()
        await self.ctx.service.verify_user_data(
            session, self.body_field("rawData"), self.body_field("signature"))
        self.write_json({"valid": True})


class PhoneHandler(ApiHandler):
    """``POST /platform/phone`` ``{code}`` (the ``getPhoneNumber`` button's code) ->
    ``{phoneNumber, purePhoneNumber, countryCode}``, as the platform verified it; recorded
    for the app's backend."""

    async def post(self) -> None:
        session = await self.current_session()
        phone = await self.ctx.platform_calls.phone_number(session, self.body_field("code"))
        self.write_json(phone.as_json())


class CheckHandler(ApiHandler):
    """``GET /platform/check`` -> ``{"valid": true|false}``: whether the platform still holds
    the stored session_key as the user's (WeChat's checkSessionKey)."""

    async def get(self) -> None:
        session = await self.current_session()
        self.write_json({"valid": await self.ctx.platform_calls.session_key_valid(session)})
