"""Fake Alipay gateway: ``POST /gateway.do`` answering ``alipay.system.oauth.token``.

It checks requests as Alipay does: the app_id (else 40002 ``isv.invalid-app-id``), then the RSA2
signature with the app's public key over the sorted ``k=v&...`` parameters (else 40002
``isv.invalid-signature``), then the ``code`` (a bad, used or expired one -> 40002
``isv.code-invalid``; ``err:<sub_code>`` or ``err:<code>`` -> that error). Answers are
``{"alipay_system_oauth_token_response" | "error_response": {...}, "sign": "..."}`` signed with
the fake's own "Alipay" private key, whose public half minisession must be configured with.
A success names the user by ``open_id`` (``user_id`` with ``legacy_user_id``), no session_key.

Two more magic codes check that minisession refuses what Alipay did not sign:
``badsign:<openid>`` answers a success whose content was altered after signing, and
``unsigned:<openid>`` a success without a ``sign``.

This module signs and verifies with its own few lines, not minisession's: a fake that shared the
code it tests could not catch a mistake in it.
"""

import base64
import json
import re
import secrets

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from server.fakes.base import OPENID, FakeHandler, FakePlatform

_TAMPERED = re.compile(rf"(badsign|unsigned):({OPENID})(?::.*)?")
# Alipay's top-level codes and their wording.
_MSG = {"20000": "Service Currently Unavailable", "20001": "Insufficient Token Permissions",
        "40001": "Missing Required Arguments", "40002": "Invalid Arguments",
        "40004": "Business Failed", "40006": "Insufficient Permissions"}
_SUB_CODES = {  # sub_code -> (code, sub_msg)
    "isv.code-invalid": ("40002", "auth code invalid"),
    "isv.invalid-app-id": ("40002", "invalid app_id"),
    "isv.invalid-signature": ("40002", "invalid signature"),
    "isv.app-call-limited": ("40004", "app call limited"),
    "isp.unknow-error": ("20000", "system busy"),
}


def generate_key_pair() -> tuple[str, str]:
    """A new RSA-2048 key pair as PEM text: (PKCS#8 private key, SubjectPublicKeyInfo)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


class FakeAlipay(FakePlatform):
    """``app_public_key_pem`` verifies requests; ``alipay_private_key_pem`` signs answers."""

    platform = "alipay"

    def __init__(self, app_public_key_pem: str, alipay_private_key_pem: str,
                 appid: str = "2021000000000000", clock=None):
        super().__init__(appid, "", clock)
        self.app_key = serialization.load_pem_public_key(app_public_key_pem.encode())
        self.alipay_key = serialization.load_pem_private_key(alipay_private_key_pem.encode(),
                                                             password=None)
        self.legacy_user_id = False

    def signed_answer(self, node_name: str, node: dict, sign: bool = True,
                      alter: dict | None = None) -> str:
        text = json.dumps(node, ensure_ascii=False, separators=(",", ":"))
        signature = base64.b64encode(self.alipay_key.sign(
            text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
        if alter:  # changed after signing: what a tampering middlebox would send
            text = json.dumps({**node, **alter}, ensure_ascii=False, separators=(",", ":"))
        answer = f'{{"{node_name}":{text}'
        return answer + (f',"sign":"{signature}"}}' if sign else "}")

    def success(self, openid: str) -> dict:
        return {"user_id" if self.legacy_user_id else "open_id": openid,
                "access_token": "authbseB" + secrets.token_hex(16), "expires_in": 1296000,
                "refresh_token": "authbseB" + secrets.token_hex(16), "re_expires_in": 2592000}

    def error(self, code: str, sub_code: str = "", sub_msg: str = "") -> dict:
        node = {"code": code, "msg": _MSG.get(code, "fake error")}
        if sub_code:
            node.update(sub_code=sub_code, sub_msg=sub_msg or "fake error")
        return node

    def routes(self) -> list:
        return [(r"/gateway.do", GatewayHandler, {"fake": self})]


class GatewayHandler(FakeHandler):
    async def post(self) -> None:
        await self.begin()
        fake = self.fake
        # Unstripped: the signature covers the values exactly as sent.
        params = {name: self.get_argument(name, strip=False) for name in self.request.arguments}
        self.set_header("Content-Type", "application/json; charset=utf-8")
        if params.get("app_id") != fake.appid:
            return self._error("isv.invalid-app-id")
        if not self._signed(params):
            return self._error("isv.invalid-signature")
        if params.get("method") != "alipay.system.oauth.token" or not params.get("code"):
            return self.write(fake.signed_answer("error_response", fake.error("40001")))
        code = params["code"]
        if match := _TAMPERED.fullmatch(code):
            node = fake.success(match.group(2))
            if match.group(1) == "badsign":
                return self.write(fake.signed_answer(
                    "alipay_system_oauth_token_response", node, alter={"open_id": "mallory"}))
            return self.write(fake.signed_answer("alipay_system_oauth_token_response", node,
                                                 sign=False))
        verdict = fake.judge(code)
        if await self.broken_answer(verdict):
            return None
        if verdict.kind == "login":
            return self.write(fake.signed_answer("alipay_system_oauth_token_response",
                                                 fake.success(verdict.value)))
        if verdict.kind == "error" and verdict.value.isdecimal():
            return self.write(fake.signed_answer("error_response", fake.error(verdict.value)))
        return self._error(verdict.value if verdict.kind == "error" else "isv.code-invalid")

    def _error(self, sub_code: str) -> None:
        code, sub_msg = _SUB_CODES.get(sub_code, ("40004", "fake error"))
        self.write(self.fake.signed_answer("error_response",
                                           self.fake.error(code, sub_code, sub_msg)))

    def _signed(self, params: dict) -> bool:
        content = "&".join(f"{k}={v}" for k, v in sorted(params.items())
                           if k != "sign" and v)
        try:
            self.fake.app_key.verify(base64.b64decode(params.get("sign", "")), content.encode(),
                                     padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return params.get("sign_type") == "RSA2" and params.get("charset") == "utf-8"
