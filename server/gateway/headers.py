"""Which headers go up to the upstream and which come back down to the client.

Up: the client's headers minus the hop-by-hop ones (RFC 9110 §7.6.1: ``Connection``, those it
names, and the usual connection-specific ones), minus ``Host`` (the upstream's is sent; the
client's goes in ``X-Forwarded-Host``) and ``Expect`` (minisession answered it), minus any client-sent ``X-Auth-Request-*`` (whatever
its case: only minisession states an identity), minus minisession's session header and its
session cookie; plus the identity headers of the session (if any) and ``X-Forwarded-For``,
``-Proto`` and ``-Host``. Down: the upstream's headers minus the hop-by-hop ones.
``Cookie`` and ``Set-Cookie`` are left to :mod:`server.gateway.cookies`.
"""

from server.gateway.identity import PREFIX as IDENTITY_PREFIX

#: Connection-specific headers (RFC 9110 §7.6.1, and the older ones still seen in the wild).
HOP_BY_HOP = frozenset({"connection", "proxy-connection", "keep-alive", "te", "trailer",
                        "transfer-encoding", "upgrade", "proxy-authenticate",
                        "proxy-authorization"})
#: Set by the proxy itself, never copied from the client (who could forge them).
_FORWARDED = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                        "forwarded"})


def _hop_by_hop(headers: list[tuple[str, str]]) -> set[str]:
    """The fixed hop-by-hop names plus those a ``Connection`` header lists."""
    named = {token.strip().lower() for name, value in headers if name.lower() == "connection"
             for token in value.split(",") if token.strip()}
    return HOP_BY_HOP | named


def request_headers(client: list[tuple[str, str]], *, session_header: str,
                    identity: list[tuple[str, str]], cookie: str | None,
                    client_address: str, proto: str, host: str | None
                    ) -> list[tuple[str, str]]:
    """The headers of the upstream request; ``cookie`` is the ``Cookie`` to send (or None)."""
    # "Expect: 100-continue" was answered by minisession already; the body follows it up.
    dropped = _hop_by_hop(client) | _FORWARDED | {"host", "cookie", "expect",
                                                  session_header.lower()}
    headers = [(name, value) for name, value in client
               if name.lower() not in dropped and not name.lower().startswith(IDENTITY_PREFIX)]
    if cookie:
        headers.append(("Cookie", cookie))
    headers.extend(identity)
    headers.append(("X-Forwarded-For", client_address))
    headers.append(("X-Forwarded-Proto", proto))
    if host:
        headers.append(("X-Forwarded-Host", host))
    return headers


def response_headers(upstream: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The upstream's answer headers the client gets (``Set-Cookie`` apart)."""
    dropped = _hop_by_hop(upstream) | {"set-cookie"}
    return [(name, value) for name, value in upstream if name.lower() not in dropped]
