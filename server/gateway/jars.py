"""The session's cookie jars, as the proxy uses them: one jar per (session, route).

What goes upstream in ``Cookie`` is read from the session as the request authenticated it (no
extra store read); what the upstream sets is written cookie by cookie
(:meth:`SessionStore.update_cookie_jar`), so concurrent responses lose none, within the
route's ``cookie_jar_max_bytes`` as judged by the store on the jar as stored.
"""

import base64
import logging
from urllib.parse import urlsplit

from server.errors import DataTooLarge
from server.gateway.cookie_jar import CookieJar
from server.gateway.routes import upstream_url
from server.stores.base import SessionStore

log = logging.getLogger("minisession.gateway")


def jar_name(route) -> str:
    """The session field a route's jar is kept under: its prefix, as a safe field name."""
    return base64.urlsafe_b64encode(route.prefix.encode("utf-8")).decode("ascii").rstrip("=")


def _upstream_path(route, uri: str) -> str:
    """The path as the upstream sees it, which its cookies' paths are about."""
    return urlsplit(upstream_url(route, uri)).path


class CookieJars:
    def __init__(self, sessions: SessionStore, clock):
        self.sessions = sessions
        self.clock = clock

    def _jar(self, record, route) -> CookieJar:
        return CookieJar(route.upstream, record.cookie_jars.get(jar_name(route)),
                         max_bytes=route.cookie_jar_max_bytes)

    def cookie_header(self, session, route, uri: str) -> str | None:
        """The ``Cookie`` header for the session's request of ``uri`` (as the client sent
        it) to the route's upstream, or None."""
        return self._jar(session.record, route).cookie_header(_upstream_path(route, uri),
                                                              self.clock.now())

    async def keep(self, session, route, uri: str, set_cookies: list[str]) -> None:
        """Keep the upstream's ``Set-Cookie`` values (one per header) in the session's jar,
        as the answer to the session's request of ``uri``.

        Never raises for the cookies themselves: one that breaks RFC 6265's rules or does not
        fit is dropped (counted in a warning, never shown), and the response goes on.
        """
        if not set_cookies:
            return
        record, name = session.record, jar_name(route)
        for _ in range(2):
            jar = self._jar(record, route)
            change = jar.receive(set_cookies, _upstream_path(route, uri), self.clock.now())
            if not change:
                break
            try:
                written = await self.sessions.update_cookie_jar(
                    record.id, name, change.set, change.unset,
                    max_bytes=route.cookie_jar_max_bytes)
            except DataTooLarge:
                # Other responses filled the jar since this request read it: judge again on
                # the jar as stored now.
                stored = await self.sessions.get(record.id)
                if stored is None:
                    return
                record.cookie_jars = stored.cookie_jars
                continue
            if written:
                record.cookie_jars = record.cookie_jars | {name: jar.cookies}
            break
        else:
            change.refused += len(change.set)
        if change.refused:
            log.warning("%d cookie(s) set by the upstream of gateway route %s were not kept "
                        "(invalid, or over the jar's limits)", change.refused, route.prefix)
