"""QQ: the same code2Session protocol as WeChat (``GET /sns/jscode2session``, same parameters,
answers and errcodes), served at https://api.q.qq.com; the mini-program calls ``qq.login()``."""

from server.platforms.wechat import WeChatLoginProvider


class QQLoginProvider(WeChatLoginProvider):
    name = "qq"
    label = "QQ"
    login_call = "qq.login()"
    # QQ's access_token comes from another API (GET /api/getToken), not stable_token.
    supports_access_token = False
