"""The identity headers a backend reads, shared by ``/auth`` and the gateway.

Values are percent-encoded UTF-8 wherever a byte is not visible ASCII, and for ``%`` and ``+``
themselves, so that an app's user id (any printable string) is always a valid header value,
and ``rawurldecode``/``urldecode``/``decodeURIComponent``/``unquote`` all give it back; ids of
visible ASCII without ``%`` or ``+`` (openids, numbers, uuids) are sent as they are.
"""

from urllib.parse import quote

#: The header family (any case) that carries identity: never taken from a client.
PREFIX = "x-auth-request-"

# Visible ASCII but "%" (the escape) and "+" (a space to urldecode): sent as they are.
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "%+")


def header_value(text: str) -> str:
    """``text`` as a header value that decodes back to it (see the module's docstring)."""
    return quote(text, safe=_SAFE)


def identity_headers(session) -> list[tuple[str, str]]:
    """The identity of a live session: user (openid), app, bound user id, unionid; a header
    only for what is known."""
    return [(name, header_value(value)) for name, value in (
        ("X-Auth-Request-User", session.openid),
        ("X-Auth-Request-App", session.app),
        ("X-Auth-Request-User-Id", session.user_id),
        ("X-Auth-Request-Unionid", session.record.unionid)) if value is not None]
