"""What a client, an admin and the log hear when one of WeChat's calls other than the login
fails: the message names what to do for *that* call (a new phone code, or just a retry: never
"a new login code"), and the log line names the API (stable_token, checksession,
getuserphonenumber, resetusersessionkey), not code2Session. Against the fake WeChat, slowed
down past the app's timeout or taken off the network."""

import logging

import pytest
import tornado.httpserver
import tornado.testing

from server.config import parse_config
from server.fakes import make_app
from server.fakes.wechat import FakeWeChat
from tests.conftest import ENCRYPTION_KEY, SECRET, WECHAT_APPID, WECHAT_SECRET
from tests.test_admin import ADMIN, API_KEY
from tests.test_platform_data import assert_error, login

TIMEOUT = 0.5


class Platform:
    """The fake WeChat on its own port, which a test can take off the network."""

    def __init__(self, fake):
        sock, port = tornado.testing.bind_unused_port()
        self.server = tornado.httpserver.HTTPServer(make_app(fake))
        self.server.add_sockets([sock])
        self.url = f"http://127.0.0.1:{port}"

    async def go_down(self) -> None:
        """Stop listening and drop the kept-alive connections: the next call cannot connect."""
        self.server.stop()
        await self.server.close_all_connections()


@pytest.fixture
def fake(clock):
    return FakeWeChat(appid=WECHAT_APPID, secret=WECHAT_SECRET, clock=clock)


@pytest.fixture
def platform(io_loop, fake):
    platform = Platform(fake)
    yield platform
    io_loop.run_sync(platform.go_down, timeout=5)


@pytest.fixture
def config(platform):
    return parse_config({
        "session": {"secrets": [SECRET]},
        "store": {"backend": "memory", "encryption_keys": [ENCRYPTION_KEY]},
        "admin": {"enabled": True, "api_keys": [API_KEY]},
        "apps": {"shop": {"platform": "wechat", "appid": WECHAT_APPID, "secret": WECHAT_SECRET,
                          "api_base": platform.url, "timeout": TIMEOUT}},
        "login": {"default_app": "shop"},
    }, environ={}, source="<test>")


def phone(client, session):
    return client.request("POST", "/platform/phone", headers=session,
                          json_body={"code": "a-getPhoneNumber-code"})


def check(client, session):
    return client.request("GET", "/platform/check", headers=session)


def access_token(client):
    return client.request("GET", "/admin/apps/shop/access_token", headers=ADMIN)


def reset(client, openid):
    return client.request("POST", f"/admin/apps/shop/users/{openid}/session_key/reset",
                          headers=ADMIN)


def assert_heard(answer, status, code, message):
    assert_error(answer, status, code)
    assert answer.json["message"] == message
    assert "login code" not in message


def logged(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records
            if record.name == "minisession.platforms"]


async def ready_user(client, fake):
    """alice logged in, and the app's token fetched: the next call goes to the user API."""
    session = await login(client, fake, "alice")
    assert (await access_token(client)).code == 200
    return session


@pytest.mark.gen_test(timeout=30)
async def test_a_slow_platform_on_phone_check_and_reset_names_the_call(client, fake, caplog):
    session = await ready_user(client, fake)
    fake.delay = TIMEOUT * 3  # every user API answer now comes after the timeout
    caplog.set_level(logging.INFO)

    assert_heard(await phone(client, session), 504, "platform_timeout",
                 "WeChat did not answer in time; get a new code from the getPhoneNumber "
                 "button and retry")
    assert_heard(await check(client, session), 504, "platform_timeout",
                 "WeChat did not answer in time; retry")
    assert_heard(await reset(client, "alice"), 504, "platform_timeout",
                 "WeChat did not answer in time; retry")
    assert logged(caplog) == [
        "WeChat getuserphonenumber (app shop) did not answer in time",
        "WeChat checksession (app shop) did not answer in time",
        "WeChat resetusersessionkey (app shop) did not answer in time"]


@pytest.mark.gen_test(timeout=30)
async def test_a_slow_stable_token_is_named_to_the_admin_and_the_client(client, fake, caplog):
    session = await login(client, fake, "alice")
    fake.access_tokens.delay = TIMEOUT * 3
    caplog.set_level(logging.INFO)

    assert_heard(await access_token(client), 504, "platform_timeout",
                 "WeChat did not answer in time; retry")
    # The client's call needs the token first: what failed is the token, not its code.
    assert_heard(await check(client, session), 504, "platform_timeout",
                 "WeChat did not answer in time; retry")
    assert logged(caplog) == ["WeChat stable_token (app shop) did not answer in time"] * 2


@pytest.mark.gen_test(timeout=30)
async def test_an_unreachable_platform_on_phone_and_check_names_the_call(
        client, fake, platform, caplog):
    session = await ready_user(client, fake)
    await platform.go_down()
    caplog.set_level(logging.INFO)

    assert_heard(await phone(client, session), 502, "platform_unavailable",
                 "WeChat could not be reached; get a new code from the getPhoneNumber "
                 "button and retry shortly")
    assert_heard(await check(client, session), 502, "platform_unavailable",
                 "WeChat could not be reached; retry shortly")
    assert logged(caplog) == [
        "cannot reach WeChat getuserphonenumber (app shop): ConnectError",
        "cannot reach WeChat checksession (app shop): ConnectError"]


@pytest.mark.gen_test(timeout=30)
async def test_an_unreachable_stable_token_is_named_to_the_admin(client, platform, caplog):
    await platform.go_down()
    caplog.set_level(logging.INFO)
    assert_heard(await access_token(client), 502, "platform_unavailable",
                 "WeChat could not be reached; retry shortly")
    assert logged(caplog) == ["cannot reach WeChat stable_token (app shop): ConnectError"]
