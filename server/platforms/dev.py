"""The ``dev`` platform: ``dev:<openid>`` logs in as that openid, no platform account needed.

For development and demos only: anyone can log in as anyone, so the configuration refuses it
on a non-loopback address.
"""

import base64
import re
import secrets

from server.platforms.base import Identity, LoginProvider, ProviderError

_DEV_CODE = re.compile(r"dev:([A-Za-z0-9_-]{1,64})")


class DevLoginProvider(LoginProvider):
    name = "dev"

    async def _exchange(self, code, anonymous_code=None) -> Identity:
        match = _DEV_CODE.fullmatch(code or "")
        if match is None:
            raise ProviderError(
                "code_invalid",
                "the dev login provider takes codes of the form dev:<openid> "
                "(openid: 1-64 letters, digits, '_' or '-')",
            )
        # A fresh key per login, like WeChat: the newest one replaces the stored one.
        session_key = base64.b64encode(secrets.token_bytes(16)).decode()
        return Identity(openid=match.group(1), session_key=session_key)
