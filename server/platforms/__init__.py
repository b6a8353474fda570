"""Mini-program platforms: one login provider module per platform, all of the same shape.

:func:`make_provider` is the one switch from an app's configured ``platform`` to its provider.
"""

from server.platforms.base import (
    PLATFORMS,
    AppCredentials,
    Identity,
    LoginProvider,
    ProviderError,
)

__all__ = ["PLATFORMS", "AppCredentials", "Identity", "LoginProvider", "ProviderError",
           "make_provider"]


def make_provider(credentials: AppCredentials) -> LoginProvider:
    """The provider for one app. Raises ValueError for an unknown platform or unusable keys."""
    # Imported per platform, so that an app on one platform loads nothing of the others.
    platform = credentials.platform
    if platform == "wechat":
        from server.platforms.wechat import WeChatLoginProvider as provider
    elif platform == "qq":
        from server.platforms.qq import QQLoginProvider as provider
    elif platform == "douyin":
        from server.platforms.douyin import DouyinLoginProvider as provider
    elif platform == "baidu":
        from server.platforms.baidu import BaiduLoginProvider as provider
    elif platform == "kuaishou":
        from server.platforms.kuaishou import KuaishouLoginProvider as provider
    elif platform == "alipay":
        from server.platforms.alipay import AlipayLoginProvider as provider
    elif platform == "dev":
        from server.platforms.dev import DevLoginProvider as provider
    else:
        raise ValueError(f"unknown platform {platform!r}; one of: {', '.join(PLATFORMS)}")
    return provider(credentials)
