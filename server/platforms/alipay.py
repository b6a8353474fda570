"""Alipay: ``alipay.system.oauth.token`` through the RSA2-signed gateway (``POST /gateway.do``).

``my.getAuthCode({scopes: 'auth_base'})`` gives an ``authCode``. The request carries Alipay's
common parameters and is signed with the app's RSA private key: RSA-SHA256 (PKCS#1 v1.5) over
the parameters sorted by name as ``k=v&k=v`` (``sign`` left out), base64 in ``sign``. The answer
is ``{"alipay_system_oauth_token_response": {...}, "sign": "..."}`` (``error_response`` for some
errors); its ``sign`` covers the exact JSON text of that member, as the official SDKs check it,
so we verify those bytes with Alipay's public key and read the identity from those same bytes.

A success must be signed; a signature that does not verify is refused as
``platform_misconfigured`` (most often the configured key is not Alipay's public key; otherwise
the answer was altered on the way: either way the operator must look, and nobody logs in). An
unsigned error is mapped like a signed one: it can only refuse a login, never grant one.
Alipay has no session_key. Production ``api_base``: https://openapi.alipay.com.
"""

import base64
import datetime
import json
import logging

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from server.platforms.base import (
    AppCredentials,
    HttpLoginProvider,
    Identity,
    ProviderError,
    require_code,
)

log = logging.getLogger("minisession.platforms")

METHOD = "alipay.system.oauth.token"
_SUCCESS_NODE = "alipay_system_oauth_token_response"
_ERROR_NODE = "error_response"
_BEIJING = datetime.timezone(datetime.timedelta(hours=8))  # the gateway's timestamps

# sub_code -> (generic code, seconds to wait or None); then code -> the same; else platform_error.
_SUB_CODES = {
    "isv.code-invalid": ("code_invalid", None),
    "isv.invalid-app-id": ("platform_misconfigured", None),
    "isv.invalid-signature": ("platform_misconfigured", None),
    "isv.invalid-signature-type": ("platform_misconfigured", None),
    "isv.missing-signature": ("platform_misconfigured", None),
    "isv.app-call-limited": ("platform_rate_limited", 60),
    "aop.ACQ.SYSTEM_ERROR": ("platform_busy", 1),
}
_CODES = {
    "20000": ("platform_busy", 1),              # service currently unavailable
    "20001": ("platform_misconfigured", None),  # insufficient token permissions
    "40006": ("platform_misconfigured", None),  # insufficient isv permissions
}


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """The app's RSA private key: PEM (PKCS#8 or PKCS#1), or the bare base64 Alipay's key
    tool prints. Raises ValueError when it is not one."""
    key = (serialization.load_pem_private_key(text.encode(), password=None)
           if "-----BEGIN" in text
           else serialization.load_der_private_key(_bare_base64(text), password=None))
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """Alipay's RSA public key: PEM, or the bare base64 the Alipay console shows."""
    key = (serialization.load_pem_public_key(text.encode())
           if "-----BEGIN" in text else serialization.load_der_public_key(_bare_base64(text)))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def _bare_base64(text: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except ValueError:
        raise ValueError("neither PEM nor base64") from None


def signing_string(params: dict[str, str]) -> str:
    """What RSA2 signs: non-empty parameters but ``sign``, sorted by name, ``k=v`` joined by &."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign" and v != "")


def sign(private_key: rsa.RSAPrivateKey, content: str) -> str:
    signature = private_key.sign(content.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def verify(public_key: rsa.RSAPublicKey, content: str, signature) -> bool:
    try:
        public_key.verify(base64.b64decode(signature, validate=True), content.encode(),
                          padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def top_level_members(text: str) -> dict[str, str]:
    """The exact JSON text of each member of the object ``text``, by name.

    Raises ValueError unless ``text`` is one JSON object.
    """
    decoder, ws = json.JSONDecoder(), " \t\n\r"

    def skip(i: int) -> int:
        while i < len(text) and text[i] in ws:
            i += 1
        return i

    members, i = {}, skip(0)
    if text[i:i + 1] != "{":
        raise ValueError("not a JSON object")
    i = skip(i + 1)
    if text[i:i + 1] == "}":
        i += 1
    else:
        while True:
            name, i = decoder.raw_decode(text, i)
            i = skip(i)
            if not isinstance(name, str) or text[i:i + 1] != ":":
                raise ValueError("not a JSON object")
            start = skip(i + 1)
            _, i = decoder.raw_decode(text, start)
            members[name] = text[start:i]
            i = skip(i)
            if text[i:i + 1] == "}":
                i += 1
                break
            if text[i:i + 1] != ",":
                raise ValueError("not a JSON object")
            i = skip(i + 1)
    if skip(i) != len(text):
        raise ValueError("text after the JSON object")
    return members


class AlipayLoginProvider(HttpLoginProvider):
    name = "alipay"
    label = "Alipay"
    endpoint = METHOD
    code_name = "code"

    def __init__(self, credentials: AppCredentials):
        if not credentials.private_key_pem or not credentials.platform_public_key_pem:
            raise ValueError("an Alipay app needs its private key and Alipay's public key")
        # Loaded once: a key that does not load fails at start, not at the first login.
        self._private_key = load_private_key(credentials.private_key_pem)
        self._alipay_key = load_public_key(credentials.platform_public_key_pem)
        super().__init__(credentials)

    async def _exchange(self, code, anonymous_code=None) -> Identity:
        code = require_code("my.getAuthCode()", code)
        params = {
            "app_id": self.credentials.appid,
            "method": METHOD,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": datetime.datetime.now(_BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
            "grant_type": "authorization_code",
            "code": code,
        }
        params["sign"] = sign(self._private_key, signing_string(params))
        response = await self._send("POST", "/gateway.do", data=params)
        node_name, node, signed = self._verified_node(response.content)
        if node_name == _ERROR_NODE or node.get("code", "10000") != "10000":
            raise self._error(node)
        if not signed:
            raise self._unsigned("a success without a signature")
        return Identity(openid=self.required_text(node.get("open_id") or node.get("user_id")))

    def _verified_node(self, body: bytes) -> tuple[str, dict, bool]:
        """The answer's member (its name, its value), and whether it carries a signature.

        A signature that is there but does not verify is refused here, error or success.
        """
        try:
            members = top_level_members(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise self.unreadable("something that is not a JSON object") from None
        node_name = _SUCCESS_NODE if _SUCCESS_NODE in members else _ERROR_NODE
        node_text, signature = members.get(node_name), members.get("sign")
        if node_text is None:
            raise self.unreadable(f"an object without {_SUCCESS_NODE} or {_ERROR_NODE}")
        if signature is not None and not verify(self._alipay_key, node_text,
                                                json.loads(signature)):
            raise self._unsigned("a signature that does not verify with the configured "
                                 "Alipay public key")
        node = json.loads(node_text)
        if not isinstance(node, dict):
            raise self.unreadable(f"a {node_name} that is not an object")
        return node_name, node, signature is not None

    def _unsigned(self, what: str) -> ProviderError:
        log.warning("%s answered %s", self.where, what)
        return ProviderError("platform_misconfigured",
                             "Alipay's answer does not carry a valid signature; the server's "
                             "Alipay public key may be wrong")

    def _error(self, node: dict) -> ProviderError:
        code, sub_code = str(node.get("code", "")), str(node.get("sub_code", ""))
        generic, retry_after = _SUB_CODES.get(sub_code) or _CODES.get(code,
                                                                      ("platform_error", None))
        words = " ".join(str(node.get(k, "")) for k in ("msg", "sub_msg")).strip()
        hint = "call my.getAuthCode() again for a new code" if generic == "code_invalid" else ""
        platform_code = f"{code} ({sub_code})" if sub_code else code
        return self.refused(generic, platform_code, words, hint, retry_after)
