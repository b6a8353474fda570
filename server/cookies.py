"""Reading the session id from what clients really send, and writing the session cookie.

Mini-program clients have no cookie jar and build the ``Cookie`` header by hand, so intake is
lenient: several cookies, stray spaces, quoted or URL-encoded values, several ``Cookie``
headers, and even the whole stored ``Set-Cookie`` string echoed back with its attributes
(``sid=abc; Path=/; HttpOnly; Max-Age=7200``) or several of them comma-joined. Parsing never
raises; what it returns is only a *candidate* and must still pass signature verification.
"""

from urllib.parse import unquote

MAX_VALUE_LENGTH = 512


def _clean(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].strip()
    if "%" in value:
        value = unquote(value, errors="replace")
    return value


def cookie_values(headers: list[str], name: str) -> list[str]:
    """Every value given to cookie ``name`` in these ``Cookie`` header lines, in order."""
    found = []
    for line in headers:
        # ';' separates cookies; ',' separates Set-Cookie strings that a client joined.
        # (str methods: a fifth of the instructions of a regular expression's split)
        for part in line.replace(",", ";").split(";"):
            key, sep, value = part.partition("=")
            if not sep or key.strip() != name:
                continue
            value = _clean(value)
            if value and len(value) <= MAX_VALUE_LENGTH:
                found.append(value)
    return found


def header_values(headers: list[str], cookie_name: str) -> list[str]:
    """Candidates from the session header (``X-Session`` by default).

    Normally the bare id; some clients put ``name=value`` (or a whole stored Set-Cookie string)
    there instead, which is read like a Cookie header.
    """
    found = []
    for line in headers:
        if "=" in line or ";" in line:
            found.extend(cookie_values([line], cookie_name))
        else:
            value = _clean(line)
            if value and len(value) <= MAX_VALUE_LENGTH:
                found.append(value)
    return found


def session_cookie(name: str, token: str, max_age: int, *, secure: bool, samesite: str) -> str:
    """The one ``Set-Cookie`` value for the session (an empty value with Max-Age=0 clears it)."""
    parts = [f"{name}={token}", "Path=/", "HttpOnly", f"Max-Age={max(0, int(max_age))}"]
    if secure:
        parts.append("Secure")
    parts.append(f"SameSite={samesite}")
    return "; ".join(parts)

