"""What a login provider is: it turns a one-time client code into a platform identity.

WeChat's code2Session is the first provider; others (QQ, Douyin, Baidu...) plug in beside it
by implementing :class:`LoginProvider`.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Identity:
    """Who logged in, as the platform tells it.

    ``session_key`` is the platform's secret for this user: it stays on the server and is kept
    out of ``repr`` so that it cannot reach a log line by accident.
    """

    openid: str
    session_key: str = field(repr=False)
    unionid: str | None = None


class LoginProvider:
    """Exchanges a login code for an :class:`Identity`.

    ``exchange`` raises :class:`server.errors.ApiError` with the status and code that the client
    should see (400 ``invalid_code``, 403 ``user_blocked``, 429, 502, 503, 504...).
    """

    name = "abstract"

    async def exchange(self, code: str) -> Identity:
        raise NotImplementedError

    async def close(self) -> None:
        """Release pooled connections; called once at shutdown."""
