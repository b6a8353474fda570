"""The cookies an upstream sets, kept for a client that keeps none (RFC 6265).

A gateway route with ``cookie_jar = true`` keeps, per session, the cookies its upstream sets
and sends them back on the session's later requests to it: a mini-program's ``wx.request``
keeps no cookies, so an unchanged backend (PHP's ``PHPSESSID``, express-session's
``connect.sid``) gets its own session back through minisession's.

Why a small jar of our own rather than ``http.cookiejar`` or aiohttp's: a route has ONE fixed
upstream origin, so most of what a browser jar is about (third-party and public-suffix rules,
many origins, cross-site policies) has nothing to decide here. ``http.cookiejar`` follows the
older Netscape/RFC 2965 rules: it rewrites host-only cookies of ``localhost`` and of bare IP
addresses (``127.0.0.1`` is exactly where upstreams run) into ``.local`` domains and refuses
them, and it keeps its state in objects that cannot be stored field by field. aiohttp's jar
follows RFC 6265 but is another dependency (and event-loop bound, with ``unsafe=True`` needed
for IP hosts), and it too keeps opaque state. What the gateway needs is the storage model
and the retrieval rules of RFC 6265 sections 5.1-5.4, over plain JSON-able dicts keyed so that
the store can write one cookie without rewriting the others (concurrent responses then lose
none): about 250 lines, no I/O, no clock of its own (``now`` is passed in), unit-tested
against the RFC's cases.

Deliberate choices, beyond RFC 6265:

- ``Secure`` cookies are kept from, and sent to, https upstreams and loopback ones
  (``127.0.0.0/8``, ``::1``, ``localhost``), which browsers treat as trustworthy origins
  too: a backend on the same machine that sets ``Secure`` because the client came over https
  (``X-Forwarded-Proto``) keeps working. From any other plain-http upstream a ``Secure``
  cookie is ignored (RFC 6265bis), since it could never be sent back to it.
  ``__Secure-``/``__Host-`` prefixes are checked as 6265bis says.
- ``HttpOnly`` only concerns scripts: a server-side jar replays such cookies like any other.
- A full jar refuses NEW cookies (replacements and deletions still apply when they fit)
  instead of evicting old ones as a browser does: an upstream (or an attacker able to make it
  set cookies) flooding the jar cannot push out the session cookie the backend depends on.
- Name + value over 4096 bytes (browsers' limit), an attribute value over 1024 bytes, or a
  control character in the name or value: the cookie is ignored.
"""

import base64
import calendar
import ipaddress
import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from server.stores.base import data_size

MAX_COOKIE_BYTES = 4096  # name + value, as browsers limit them
MAX_ATTRIBUTE_BYTES = 1024
MAX_COOKIES = 50  # RFC 6265 6.1 asks for at least 50 per domain; a jar is one origin
DEFAULT_MAX_BYTES = 16384
#: The earliest representable time: an expiry at or before it deletes the cookie.
EARLIEST = 0.0
#: The latest expiry kept (year 9999), so that huge Max-Age values stay finite.
LATEST = 253402300799.0

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs but HTAB (6265bis 5.6 step 2)
_DATE_DELIMITER = re.compile(r"[\x09\x20-\x2f\x3b-\x40\x5b-\x60\x7b-\x7e]+")
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[^0-9].*)?$")
_DAY = re.compile(r"([0-9]{1,2})(?:[^0-9].*)?$")
_YEAR = re.compile(r"([0-9]{2,4})(?:[^0-9].*)?$")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def parse_cookie_date(text: str) -> float | None:
    """An ``Expires`` value as seconds since the epoch (RFC 6265 5.1.1), or None if invalid."""
    time = day = month = year = None
    for token in _DATE_DELIMITER.split(text):
        if not token:
            continue
        if time is None and (found := _TIME.match(token)):
            time = tuple(int(part) for part in found.groups())
        elif day is None and (found := _DAY.match(token)):
            day = int(found.group(1))
        elif month is None and token[:3].lower() in _MONTHS:
            month = _MONTHS.index(token[:3].lower()) + 1
        elif year is None and (found := _YEAR.match(token)):
            year = int(found.group(1))
    if None in (time, day, month, year):
        return None
    if 70 <= year <= 99:
        year += 1900
    elif 0 <= year <= 69:
        year += 2000
    hour, minute, second = time
    if not (1 <= day <= 31 and year >= 1601 and hour <= 23 and minute <= 59 and second <= 59):
        return None
    if day > calendar.monthrange(year, month)[1]:
        return None  # a date that does not exist (February 30th)
    return float(calendar.timegm((year, month, day, hour, minute, second)))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def domain_matches(host: str, domain: str) -> bool:
    """RFC 6265 5.1.3: ``host`` is ``domain`` or a subdomain of it (never for IP hosts)."""
    return host == domain or (host.endswith("." + domain) and not _is_ip(host))


def default_path(request_path: str) -> str:
    """RFC 6265 5.1.4: the directory of the request path."""
    if not request_path.startswith("/") or request_path.count("/") == 1:
        return "/"
    return request_path[:request_path.rindex("/")]


def path_matches(request_path: str, cookie_path: str) -> bool:
    """RFC 6265 5.1.4: equal, or a prefix ending at a '/' boundary."""
    if request_path == cookie_path:
        return True
    return request_path.startswith(cookie_path) and (
        cookie_path.endswith("/") or request_path[len(cookie_path)] == "/")


def cookie_key(name: str, domain: str, path: str) -> str:
    """What a cookie is stored under: name + domain + path identify it (RFC 6265 5.3 step 11).

    Base64url, so that the key is a safe field name for every store (no '.', no '$')."""
    raw = json.dumps([name, domain, path], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


#: The bytes a jar takes as stored (compact JSON), which ``cookie_jar_max_bytes`` limits: the
#: measure the store applies too (as for ``session.data_max_bytes``).
jar_size = data_size


@dataclass
class JarChange:
    """What one response does to a jar: cookies to write (by key) and keys to remove."""

    set: dict = field(default_factory=dict)
    unset: list = field(default_factory=list)
    #: Cookies ignored for breaking a rule or for not fitting (counted, never logged).
    refused: int = 0

    def __bool__(self) -> bool:
        return bool(self.set or self.unset)


class CookieJar:
    """One upstream origin's cookies for one session, over the stored dict (key -> cookie).

    A stored cookie is ``{name, value, domain, host_only, path, expires, secure, created}``
    (``expires`` None: a session cookie, kept as long as the minisession session).
    """

    def __init__(self, upstream: str, cookies: dict | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES, max_cookies: int = MAX_COOKIES):
        """``upstream``: the origin, e.g. ``http://127.0.0.1:9000``; ``cookies``: as stored."""
        parts = urlsplit(upstream)
        self.host = (parts.hostname or "").lower()
        #: Whether Secure cookies may come from and go to this origin (see the module doc).
        self.secure = parts.scheme in ("https", "wss") or _is_loopback(self.host)
        self.cookies = dict(cookies or {})
        self.max_bytes = max_bytes
        self.max_cookies = max_cookies

    # -- receiving (RFC 6265 5.2, 5.3) ---------------------------------------------------------

    def receive(self, set_cookies: list[str], request_path: str, now: float) -> JarChange:
        """Apply a response's ``Set-Cookie`` headers (a list: never folded into one) received
        for ``request_path``; returns the change to store (this jar is updated too)."""
        change = JarChange()
        # Expired cookies go first (RFC 6265 5.3: never kept): one set again is a new cookie.
        for key in self._expired(now):
            del self.cookies[key]
            change.unset.append(key)
        for header in set_cookies:
            cookie = self._parse(header, request_path, now)
            if cookie is None:
                change.refused += 1
                continue
            key = cookie_key(cookie["name"], cookie["domain"], cookie["path"])
            old = self.cookies.get(key)
            if old is not None:
                cookie["created"] = old["created"]  # a replacement keeps its place in order
            if cookie["expires"] is not None and cookie["expires"] <= now:
                if self.cookies.pop(key, None) is not None or key in change.set:
                    change.set.pop(key, None)
                    change.unset.append(key)
                continue
            if not self._fits(key, cookie):
                change.refused += 1
                continue
            self.cookies[key] = cookie
            change.set[key] = cookie
            if key in change.unset:
                change.unset.remove(key)
        return change

    def _fits(self, key: str, cookie: dict) -> bool:
        if key not in self.cookies and len(self.cookies) >= self.max_cookies:
            return False
        return jar_size({**self.cookies, key: cookie}) <= self.max_bytes

    def _expired(self, now: float) -> list[str]:
        return [key for key, cookie in self.cookies.items()
                if cookie["expires"] is not None and cookie["expires"] <= now]

    def _parse(self, header: str, request_path: str, now: float) -> dict | None:
        """One ``Set-Cookie`` as the cookie to store, or None when it is to be ignored."""
        pair, _, attributes = header.partition(";")
        if "=" not in pair:
            return None
        name, _, value = pair.partition("=")
        name, value = name.strip(" \t"), value.strip(" \t")
        if not name or _CONTROL.search(name + value) \
                or len((name + value).encode("utf-8")) > MAX_COOKIE_BYTES:
            return None
        max_age = expires = domain = path = None
        secure = False
        for attribute in attributes.split(";"):
            key, _, attr_value = attribute.partition("=")
            key, attr_value = key.strip(" \t").lower(), attr_value.strip(" \t")
            if len(attr_value.encode("utf-8")) > MAX_ATTRIBUTE_BYTES:
                continue  # 6265bis: an oversized attribute is ignored, not the cookie
            if key == "max-age" and re.fullmatch(r"-?[0-9]+", attr_value):
                seconds = int(attr_value)
                max_age = EARLIEST if seconds <= 0 else min(now + seconds, LATEST)
            elif key == "expires" and (parsed := parse_cookie_date(attr_value)) is not None:
                expires = min(parsed, LATEST)
            elif key == "domain" and attr_value:
                domain = attr_value.lstrip(".").lower()
            elif key == "path":
                path = attr_value if attr_value.startswith("/") else None
            elif key == "secure":
                secure = True
        if domain is not None and not domain_matches(self.host, domain):
            return None  # a Domain this upstream may not set cookies for
        if secure and not self.secure:
            return None
        path = path or default_path(request_path)
        if name.startswith("__Secure-") and not secure:
            return None
        if name.startswith("__Host-") and (not secure or domain is not None or path != "/"):
            return None
        return {"name": name, "value": value, "domain": domain or self.host,
                "host_only": domain is None, "path": path,
                "expires": max_age if max_age is not None else expires,  # Max-Age wins
                "secure": secure, "created": now}

    # -- sending (RFC 6265 5.4) ----------------------------------------------------------------

    def cookie_header(self, request_path: str, now: float) -> str | None:
        """The ``Cookie`` header for a request to ``request_path``, or None when no cookie
        applies: longer paths first, then older cookies first."""
        chosen = [cookie for cookie in self.cookies.values() if self._applies(cookie,
                                                                              request_path, now)]
        if not chosen:
            return None
        chosen.sort(key=lambda cookie: (-len(cookie["path"]), cookie["created"]))
        return "; ".join(f"{cookie['name']}={cookie['value']}" for cookie in chosen)

    def _applies(self, cookie: dict, request_path: str, now: float) -> bool:
        if cookie["host_only"]:
            if self.host != cookie["domain"]:
                return False
        elif not domain_matches(self.host, cookie["domain"]):
            return False
        return (path_matches(request_path, cookie["path"])
                and (self.secure or not cookie["secure"])
                and (cookie["expires"] is None or cookie["expires"] > now))
