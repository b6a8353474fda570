"""Each app's one access_token (issue 13): the store contract of the token and its refresh
lease, the service in a server against the fake WeChat's stable_token, and real
``minisession serve`` processes sharing one FerretDB.

Figures the issue names are measured here: 2 processes x 50 concurrent needs of a cold token
-> 1 stable_token call; a token refused (40001) while 20 calls (per instance) use it -> 1
forced refresh, and the same across 2 processes x 20 ``/platform/check``; 20 concurrent
backend reports of the current token (``POST .../access_token/refused``) -> 1 forced refresh;
a lease holder killed mid-refresh -> another process takes over within the lease time.
"""

import asyncio
import concurrent.futures
import signal
import time
import uuid

import httpx
import pymongo
import pytest
from prometheus_client import REGISTRY

from devtools.processes import (
    FakePlatformsProcess,
    ServerProcess,
    new_encryption_key,
    readable_log,
    server_config,
    wait_for,
)
from server.access_tokens import AccessTokens, fingerprint
from server.app import Minisession
from server.config import AccessTokenConfig, ConfigError, parse_config
from server.fakes.wechat import FakeWeChat
from server.platforms import ProviderError
from server.platforms.base import AccessTokenRejected
from server.sealing import Sealer
from server.stores.base import StoredAppToken
from server.stores.mongodb import MongoStore, mongodb_client
from tests.conftest import (
    ENCRYPTION_KEY,
    SECRET,
    WECHAT_APPID,
    WECHAT_SECRET,
    on_both_stores,
)
from tests.test_admin import ADMIN, API_KEY

NOW = 1_800_000_000.0


# -- the store contract: AppTokenStore, on both stores -----------------------------------------

def stored(token: str, expires_at: float = NOW + 7200) -> StoredAppToken:
    # Stores keep sealed values as given: any text stands in for one here.
    return StoredAppToken(f"sealed:{token}", fingerprint(token), expires_at)


@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_a_token_lease_has_one_holder_until_released_or_past_its_time(store):
    assert await store.take_token_lease("shop", "a", NOW, 10) is True
    assert await store.take_token_lease("shop", "b", NOW + 5, 10) is False
    assert await store.take_token_lease("other", "b", NOW + 5, 10) is True  # per app
    await store.release_token_lease("shop", "b")  # not b's: nothing happens
    assert await store.take_token_lease("shop", "b", NOW + 6, 10) is False
    await store.release_token_lease("shop", "a")
    assert await store.take_token_lease("shop", "b", NOW + 7, 10) is True
    # b died holding it: once past its time, the lease is free for another.
    assert await store.take_token_lease("shop", "c", NOW + 16, 10) is False
    assert await store.take_token_lease("shop", "c", NOW + 17.5, 10) is True


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_of_many_concurrent_takers_of_a_lease_exactly_one_gets_it(store):
    for attempt in range(3):
        app = f"app{attempt}"
        taken = await asyncio.gather(*(store.take_token_lease(app, f"holder-{n}", NOW, 10)
                                       for n in range(20)))
        assert taken.count(True) == 1, taken


@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_a_token_is_saved_only_by_the_holder_of_a_live_lease(store):
    assert await store.app_token("shop") is None
    assert await store.save_app_token("shop", stored("t1"), "a", NOW) is False  # no lease
    assert await store.take_token_lease("shop", "a", NOW, 10)
    assert await store.save_app_token("shop", stored("t1"), "b", NOW) is False  # not b's
    assert await store.app_token("shop") is None
    assert await store.save_app_token("shop", stored("t1"), "a", NOW + 1) is True
    assert await store.app_token("shop") == stored("t1")
    assert await store.save_app_token("shop", stored("t2"), "a", NOW + 2) is True
    assert await store.app_token("shop") == stored("t2")
    # Past its time the lease no longer lets a (stalled) holder overwrite the token.
    assert await store.save_app_token("shop", stored("t3"), "a", NOW + 10) is False
    assert await store.app_token("shop") == stored("t2")
    assert await store.app_token("other") is None


@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_a_token_is_expired_only_while_it_is_still_the_stored_one(store):
    assert await store.expire_app_token("shop", fingerprint("t1")) is False  # none stored
    await store.take_token_lease("shop", "a", NOW, 10)
    await store.save_app_token("shop", stored("t2"), "a", NOW)
    assert await store.expire_app_token("shop", fingerprint("t1")) is False  # a stale report
    assert await store.app_token("shop") == stored("t2")
    assert await store.expire_app_token("shop", fingerprint("t2")) is True
    expired = await store.app_token("shop")
    assert expired.fingerprint == fingerprint("t2") and expired.expires_at <= NOW


# -- configuration ------------------------------------------------------------------------------

def with_access_token(timeout=5.0, **keys):
    data = {"session": {"secrets": [SECRET]}, "access_token": keys,
            "apps": {"shop": {"platform": "wechat", "appid": WECHAT_APPID,
                              "secret": WECHAT_SECRET, "timeout": timeout}}}
    return parse_config(data, environ={}, source="<test>")


def test_access_token_keys_have_defaults_and_are_checked():
    assert with_access_token().access_token == AccessTokenConfig(15.0, 120)
    # A slow platform's fetch outlasts the default lease: the default grows with it.
    assert with_access_token(timeout=10.0).access_token.lease_time == 30.0
    assert with_access_token(lease_time=10.5, refresh_margin=299).access_token == \
        AccessTokenConfig(10.5, 299)
    for keys, words in (({"refresh_margin": 300}, "less than 300"),
                        ({"refresh_margin": 0}, "at least 1"),
                        ({"lease_time": 10}, "more than twice the longest app timeout"),
                        ({"lease_time": -1}, "greater than 0"),
                        ({"lease_time": "15"}, "expected a number")):
        with pytest.raises(ConfigError) as raised:
            with_access_token(**keys)
        assert words in str(raised.value), (keys, str(raised.value))
        assert f"access_token.{next(iter(keys))}" in str(raised.value)


# -- the service in a server, against the fake WeChat ------------------------------------------

@pytest.fixture
def fake(clock):
    """The fake WeChat on the server's clock, so that token lifetimes move together."""
    return FakeWeChat(appid=WECHAT_APPID, secret=WECHAT_SECRET, clock=clock)


def token_config(api_base, backend="memory", secret=WECHAT_SECRET):
    """Two apps: shop on WeChat (which has an access_token) and game on Douyin."""
    data = {
        "session": {"secrets": [SECRET]},
        "admin": {"enabled": True, "api_keys": [API_KEY]},
        "store": {"backend": backend, "encryption_keys": [ENCRYPTION_KEY]},
        "apps": {
            "shop": {"platform": "wechat", "appid": WECHAT_APPID, "secret": secret,
                     "api_base": api_base, "timeout": 2.0},
            "game": {"platform": "douyin", "appid": "tt-app", "secret": "douyin-secret-0123456",
                     "api_base": api_base + "/douyin"},
        },
    }
    if backend == "mongodb":
        data["store"]["mongodb_uri"] = "mongodb://127.0.0.1:1/"  # the test passes its store
    return parse_config(data, environ={}, source="<test>")


@pytest.fixture
def config(api_base, backend, request):
    """The apps' config; parametrize indirectly with another app secret for shop."""
    return token_config(api_base, backend, secret=getattr(request, "param", WECHAT_SECRET))


async def get_token(client, app="shop"):
    return await client.request("GET", f"/admin/apps/{app}/access_token", headers=ADMIN)


def getcallbackip(api_base):
    """A platform call that carries the token (WeChat's getcallbackip), the way the calls
    that need a token report its refusal: AccessTokenRejected."""
    async def request(token: str) -> dict:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = (await http.get(api_base + "/cgi-bin/getcallbackip",
                                     params={"access_token": token})).json()
        if answer.get("errcode") in (40001, 40014, 42001):
            raise AccessTokenRejected(token, answer["errcode"])
        return answer
    return request


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_the_admin_api_gives_the_apps_one_token_fetched_once(client, fake):
    answers = await asyncio.gather(*(get_token(client) for _ in range(50)))
    assert {answer.code for answer in answers} == {200}
    tokens = {answer.json["access_token"] for answer in answers}
    assert len(tokens) == 1
    token = tokens.pop()
    assert fake.token_valid(token)
    assert {answer.json["expires_in"] for answer in answers} == {7200}
    assert fake.access_tokens.calls == {"normal": 1, "force": 0}


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_the_token_is_kept_until_shortly_before_it_expires_then_renewed(
        client, fake, clock, server):
    first = (await get_token(client)).json["access_token"]
    margin = server.config.access_token.refresh_margin
    clock.advance(7200 - margin - 1)
    again = (await get_token(client)).json
    assert again == {"access_token": first, "expires_in": margin + 1}
    assert fake.access_tokens.calls == {"normal": 1, "force": 0}
    clock.advance(2)  # inside the margin: renewed (stable_token renews in the last 5 minutes)
    renewed = (await get_token(client)).json
    assert renewed["access_token"] != first and renewed["expires_in"] == 7200
    assert fake.access_tokens.calls == {"normal": 2, "force": 0}
    # The overlap: the old token still works until it expires.
    assert fake.token_valid(first) and fake.token_valid(renewed["access_token"])


@pytest.mark.parametrize("backend", ["mongodb"], indirect=True)
@pytest.mark.gen_test(timeout=30)
async def test_the_token_is_sealed_at_rest(client, store, mongodb_uri):
    token = (await get_token(client)).json["access_token"]
    with pymongo.MongoClient(mongodb_uri) as mongo:
        documents = list(mongo[store._database_name]["app_tokens"].find())
    assert [doc["_id"] for doc in documents] == ["shop"]
    assert token not in repr(documents)
    sealer = Sealer([ENCRYPTION_KEY])
    assert sealer.open(documents[0]["sealed_value"], "access_token\x00shop") == token
    assert sealer.open(documents[0]["sealed_value"], "access_token\x00game") is None


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_twenty_calls_refused_at_once_cause_one_forced_refresh(client, fake, server,
                                                                      api_base):
    first = (await get_token(client)).json["access_token"]
    tokens = server.service.access_tokens
    # One call is sent with the token now, and hears it refused only after the refresh.
    late_call = LateCall(api_base)
    late = asyncio.ensure_future(tokens.call("shop", late_call.request))
    await late_call.sent.wait()

    fake.access_tokens.invalidate_all()  # as if WeChat no longer accepted it: 40001
    answers = await asyncio.gather(*(tokens.call("shop", getcallbackip(api_base))
                                     for _ in range(20)))
    assert all("ip_list" in answer for answer in answers)
    assert fake.access_tokens.calls == {"normal": 1, "force": 1}
    second = (await get_token(client)).json["access_token"]
    assert second != first and fake.token_valid(second)

    # The late report about the old token forces nothing more: it is no longer current.
    late_call.answer.set()
    assert "ip_list" in await late
    assert late_call.tokens == [first, second]
    assert fake.access_tokens.calls == {"normal": 1, "force": 1}


class LateCall:
    """A platform call whose first attempt hears the platform's answer only when told."""

    def __init__(self, api_base):
        self.api_base = api_base
        self.sent, self.answer = asyncio.Event(), asyncio.Event()
        self.tokens = []

    async def request(self, token: str) -> dict:
        self.tokens.append(token)
        if len(self.tokens) == 1:
            self.sent.set()
            await self.answer.wait()
        return await getcallbackip(self.api_base)(token)


@pytest.mark.parametrize("backend", ["mongodb"], indirect=True)
@pytest.mark.gen_test(timeout=60)
async def test_two_instances_sharing_the_store_force_one_refresh_for_forty_refusals(
        client, fake, server, store, api_base, clock, io_loop, mongodb_uri):
    # A second instance on the same database, with its own store client, cache and lease
    # holder: as another process would be.
    other_store = MongoStore(mongodb_client(mongodb_uri, 5.0), store._database_name, 5.0)
    other = Minisession(server.config, clock=clock, store=other_store)
    await other.start()
    try:
        first = (await get_token(client)).json["access_token"]
        assert (await other.service.access_tokens.current("shop")).value == first
        fake.access_tokens.invalidate_all()
        calls = [instance.service.access_tokens.call("shop", getcallbackip(api_base))
                 for instance in (server, other) for _ in range(20)]
        answers = await asyncio.gather(*calls)
        assert all("ip_list" in answer for answer in answers)
        assert fake.access_tokens.calls == {"normal": 1, "force": 1}
        assert ((await server.service.access_tokens.current("shop")).value
                == (await other.service.access_tokens.current("shop")).value != first)
    finally:
        await other.stop()


@pytest.mark.parametrize("backend", ["mongodb"], indirect=True)
@pytest.mark.gen_test(timeout=60)
async def test_the_admin_api_never_hands_out_a_token_another_instance_replaced(
        client, fake, server, store, clock, api_base, mongodb_uri):
    other_store = MongoStore(mongodb_client(mongodb_uri, 5.0), store._database_name, 5.0)
    other = Minisession(server.config, clock=clock, store=other_store)
    await other.start()
    try:
        first = (await get_token(client)).json["access_token"]  # cached in this instance
        fake.access_tokens.invalidate_all()
        assert "ip_list" in await other.service.access_tokens.call("shop",
                                                                   getcallbackip(api_base))
        # The backend asks this instance, whose cache still holds the replaced token.
        answer = (await get_token(client)).json["access_token"]
        assert answer != first and fake.token_valid(answer)
        assert fake.access_tokens.calls == {"normal": 1, "force": 1}
    finally:
        await other.stop()


class RefreshBeforeLease:
    """The store, but another process's refresh lands just before the next lease is taken:
    between this process's read of the stored token and its lease, the race the re-check
    after taking the lease is for."""

    def __init__(self, store):
        self.store = store
        self.other_refresh = None

    def __getattr__(self, name):
        return getattr(self.store, name)

    async def take_token_lease(self, *args):
        if self.other_refresh is not None:
            refresh, self.other_refresh = self.other_refresh, None
            await refresh
        return await self.store.take_token_lease(*args)


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_a_refresh_landing_just_before_the_lease_is_taken_is_used_not_repeated(
        client, fake, server, store, clock, api_base):
    providers, sealer = server.service.providers, server.service.sealer
    racing_store = RefreshBeforeLease(store)
    mine = AccessTokens(racing_store, providers, clock, sealer)
    other = AccessTokens(store, providers, clock, sealer)
    first = (await mine.current("shop")).value
    assert (await other.current("shop")).value == first
    fake.access_tokens.invalidate_all()
    racing_store.other_refresh = other.call("shop", getcallbackip(api_base))

    assert "ip_list" in await mine.call("shop", getcallbackip(api_base))
    assert fake.access_tokens.calls == {"normal": 1, "force": 1}
    assert (await mine.current("shop")).value == (await other.current("shop")).value != first


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_a_token_refused_twice_is_a_platform_error(client, fake, server):
    await get_token(client)

    async def always_refused(token: str):
        raise AccessTokenRejected(token, 40001)

    with pytest.raises(ProviderError) as raised:
        await server.service.access_tokens.call("shop", always_refused)
    assert raised.value.code == "platform_error"
    assert "40001" in raised.value.message
    assert fake.access_tokens.calls == {"normal": 1, "force": 1}


@pytest.mark.gen_test(timeout=30)
async def test_apps_without_an_access_token_and_unknown_apps_are_clear_errors(client, fake):
    game = await get_token(client, "game")
    assert (game.code, game.json["error"]) == (409, "not_supported")
    assert "douyin" in game.json["message"]
    unknown = await get_token(client, "nosuch")
    assert (unknown.code, unknown.json["error"]) == (404, "unknown_app")
    no_key = await client.request("GET", "/admin/apps/shop/access_token")
    assert no_key.code == 401
    assert fake.access_tokens.calls == {"normal": 0, "force": 0}


@pytest.mark.parametrize("config", ["wrong-secret-0123456789"], indirect=True)
@pytest.mark.gen_test(timeout=30)
async def test_a_wrong_secret_is_a_clear_error_and_stays_out_of_the_answer(client, fake):
    answer = await get_token(client)
    assert (answer.code, answer.json["error"]) == (502, "platform_misconfigured")
    assert "40001" in answer.json["message"]
    assert b"wrong-secret" not in answer.body
    # Nothing stored: the next need asks again (and is refused again).
    assert (await get_token(client)).code == 502
    assert fake.access_tokens.calls == {"normal": 2, "force": 0}


# -- the backend reports a refused token: POST /admin/apps/{app}/access_token/refused ----------

async def report_refused(client, token, app="shop"):
    return await client.request("POST", f"/admin/apps/{app}/access_token/refused",
                                headers=ADMIN, json_body={"access_token": token})


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_a_refused_current_token_is_replaced_once_and_a_stale_report_costs_nothing(
        client, fake, caplog):
    first = (await get_token(client)).json["access_token"]
    fake.access_tokens.invalidate_all()  # WeChat refuses it to the backend: 40001

    answer = await report_refused(client, first)
    assert answer.code == 200, answer.body
    second = answer.json["access_token"]
    assert second != first and fake.token_valid(second) and answer.json["expires_in"] == 7200
    assert fake.access_tokens.calls == {"normal": 1, "force": 1}
    assert (await get_token(client)).json["access_token"] == second

    # The same report again (another backend, a late one): the current token, no call.
    again = await report_refused(client, first)
    assert (again.code, again.json["access_token"]) == (200, second)
    assert fake.access_tokens.calls == {"normal": 1, "force": 1}
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert first not in logged and second not in logged


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_twenty_concurrent_reports_of_the_current_token_force_one_refresh(client, fake):
    first = (await get_token(client)).json["access_token"]
    fake.access_tokens.invalidate_all()
    answers = await asyncio.gather(*(report_refused(client, first) for _ in range(20)))
    assert [answer.code for answer in answers] == [200] * 20
    tokens = {answer.json["access_token"] for answer in answers}
    assert len(tokens) == 1 and first not in tokens and fake.token_valid(*tokens)
    # Measured: 20 reports of the current token at once -> 1 forced stable_token call.
    assert fake.access_tokens.calls == {"normal": 1, "force": 1}


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_a_wrong_or_garbage_reported_token_refreshes_nothing(client, fake, caplog):
    token = (await get_token(client)).json["access_token"]
    url = "/admin/apps/shop/access_token/refused"
    # Any string that is not the current token: the current one, nothing else happens.
    for wrong in ("x", "令牌-не-токен-🔑", token[:-1], token + " ", "A" * 2048):
        answer = await report_refused(client, wrong)
        assert answer.json == {"access_token": token, "expires_in": 7200}, wrong
    form = await client.request("POST", url, headers={
        **ADMIN, "Content-Type": "application/x-www-form-urlencoded"},
        body="access_token=%E4%BB%A4%E7%89%8C")
    assert form.json["access_token"] == token

    bad = [("missing_access_token", {}), ("missing_access_token", {"access_token": ""}),
           ("missing_access_token", {"access_token": None}),
           ("invalid_access_token", {"access_token": "A" * 2049}),
           ("invalid_access_token", {"access_token": 40001}),
           ("invalid_access_token", {"access_token": [token]}),
           ("invalid_access_token", {"access_token": "line\nbreak"})]
    for code, body in bad:
        answer = await client.request("POST", url, headers=ADMIN, json_body=body)
        assert (answer.code, answer.json["error"]) == (400, code), body
        assert answer.json["message"]
    for raw in (b'{"access_token": "\\udc80"}', b"not json {", b"\xff\xfe",
                b'{"access_token": "' + b"B" * 100_000 + b'"}'):
        answer = await client.request("POST", url, headers=ADMIN, body=raw)
        assert 400 <= answer.code < 500 and answer.json["error"], raw[:40]
    assert (await report_refused(client, token, app="game")).code == 409  # Douyin: none
    assert (await report_refused(client, token, app="nope")).code == 404

    assert fake.access_tokens.calls == {"normal": 1, "force": 0}
    assert fake.token_valid(token)
    assert token not in "\n".join(record.getMessage() for record in caplog.records)


@pytest.mark.gen_test(timeout=30)
async def test_refreshes_are_counted_by_app_mode_and_outcome(client, fake, server, api_base):
    def value(mode, outcome):
        return REGISTRY.get_sample_value("minisession_access_token_refreshes_total",
                                         {"app": "shop", "mode": mode, "outcome": outcome}) or 0

    before = {key: value(*key) for key in (("normal", "ok"), ("force", "ok"))}
    token = (await get_token(client)).json["access_token"]
    fake.access_tokens.invalidate_all()
    await server.service.access_tokens.call("shop", getcallbackip(api_base))
    moved = {key: value(*key) - before[key] for key in before}
    assert moved == {("normal", "ok"): 1, ("force", "ok"): 1}
    labels = {value for metric in REGISTRY.collect()
              if metric.name == "minisession_access_token_refreshes"
              for sample in metric.samples for value in sample.labels.values()}
    assert token not in labels and labels <= {"shop", "normal", "force", "ok",
                                              *ProviderError.CODES}


# -- real processes: two `minisession serve` on one FerretDB, the fake platforms ---------------

LEASE_TIME = 5.0


@pytest.fixture
def fake_process(tmp_path):
    with FakePlatformsProcess(tmp_path, "fakes").start() as process:
        yield process


@pytest.fixture
def two_servers(mongodb_uri, fake_process, tmp_path):
    """Two servers sharing one database (and so its encryption key), WeChat through the fake,
    a short lease (the platform timeout is 2 s: a fetch takes at most about 4)."""
    database = f"minisession_tokens_{uuid.uuid4().hex[:12]}"
    config = server_config(mongodb_uri, database, wechat_base=fake_process.url,
                           encryption_key=new_encryption_key(),
                           admin={"enabled": True, "api_keys": [API_KEY]},
                           wechat={"timeout": 2.0},
                           access_token={"lease_time": LEASE_TIME})
    servers = [ServerProcess(config, tmp_path, name) for name in ("a", "b")]
    try:
        for server in servers:
            server.start().wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()
        with pymongo.MongoClient(mongodb_uri) as mongo:
            mongo.drop_database(database)


def token_calls(fake_process) -> dict:
    return httpx.get(fake_process.url + "/fake/stats", timeout=5).json()["stable_token_calls"]


def token_valid(fake_process, token: str) -> bool:
    answer = httpx.post(fake_process.url + "/fake/access_token/check",
                        json={"access_token": token}, timeout=5)
    return answer.json()["valid"]


def assert_not_logged(token: str, *processes) -> None:
    for process in processes:
        assert token not in readable_log(process.log()), f"{process.name} logged the token"


def concurrent_needs(servers, each: int) -> list[httpx.Response]:
    """``each`` token requests to every server, all at once."""
    async def needs():
        async with httpx.AsyncClient(timeout=30, headers=ADMIN,
                                     limits=httpx.Limits(max_connections=200)) as http:
            return await asyncio.gather(*(
                http.get(server.url + "/admin/apps/default/access_token")
                for server in servers for _ in range(each)))
    return asyncio.run(needs())


def test_a_memory_store_process_with_fifty_cold_needs_fetches_one_token(fake_process,
                                                                          tmp_path):
    config = server_config(wechat_base=fake_process.url,
                           admin={"enabled": True, "api_keys": [API_KEY]})
    with ServerProcess(config, tmp_path, "memory").start() as server:
        server.wait_ready()
        answers = concurrent_needs([server], 50)
        assert [answer.status_code for answer in answers] == [200] * 50
        tokens = {answer.json()["access_token"] for answer in answers}
        assert len(tokens) == 1 and token_valid(fake_process, *tokens)
        assert token_calls(fake_process) == {"normal": 1, "force": 0}
        assert_not_logged(tokens.pop(), server, fake_process)


def test_two_processes_with_fifty_cold_needs_each_fetch_one_token(two_servers, fake_process):
    answers = concurrent_needs(two_servers, 50)
    assert [answer.status_code for answer in answers] == [200] * 100
    tokens = {answer.json()["access_token"] for answer in answers}
    assert len(tokens) == 1
    token = tokens.pop()
    # Measured: 100 needs of a cold token in 2 processes -> 1 stable_token call.
    assert token_calls(fake_process) == {"normal": 1, "force": 0}
    assert token_valid(fake_process, token)
    assert_not_logged(token, *two_servers, fake_process)


def test_two_processes_with_twenty_checks_each_on_a_refused_token_force_one_refresh(
        two_servers, fake_process):
    a, b = two_servers
    openid = f"check-{uuid.uuid4().hex[:10]}"
    code = httpx.post(fake_process.url + "/fake/login", json={"openid": openid},
                      timeout=5).json()["code"]
    login = httpx.post(a.url + "/login", json={"code": code}, timeout=10)
    assert login.status_code == 200, login.text
    session = {"X-Session": login.json()["session_id"]}
    for server in two_servers:  # both processes hold the token in their cache
        warm = httpx.get(server.url + "/platform/check", headers=session, timeout=10)
        assert warm.json() == {"valid": True}, warm.text
    assert token_calls(fake_process) == {"normal": 1, "force": 0}
    before = httpx.get(fake_process.url + "/fake/stats", timeout=5).json()["user_calls"]

    # WeChat stops accepting the token (as after a fetch elsewhere): every call gets 40001.
    httpx.post(fake_process.url + "/fake/access_token/invalidate", timeout=5)

    async def checks():
        async with httpx.AsyncClient(timeout=30, headers=session,
                                     limits=httpx.Limits(max_connections=100)) as http:
            return await asyncio.gather(*(http.get(server.url + "/platform/check")
                                          for server in two_servers for _ in range(20)))
    answers = asyncio.run(checks())
    assert [(answer.status_code, answer.json()) for answer in answers] == [
        (200, {"valid": True})] * 40
    # Measured: a 40001 on the current token, 2 processes x 20 calls -> 1 forced refresh.
    assert token_calls(fake_process) == {"normal": 1, "force": 1}
    after = httpx.get(fake_process.url + "/fake/stats", timeout=5).json()["user_calls"]
    sent = after["checksession"] - before["checksession"]
    assert 40 < sent <= 80  # each call once, those that carried the old token twice
    token = httpx.get(b.url + "/admin/apps/default/access_token", headers=ADMIN,
                      timeout=10).json()["access_token"]
    assert token_valid(fake_process, token)
    print(f"\nmeasured: 40001 on the current token; 2 processes x 20 /platform/check -> "
          f"stable_token {token_calls(fake_process)}, {sent} checksession calls, 40 x 200")
    assert_not_logged(token, a, b, fake_process)


def test_a_holder_killed_mid_refresh_is_taken_over_within_the_lease_time(two_servers,
                                                                       fake_process):
    a, b = two_servers
    httpx.post(fake_process.url + "/fake/access_token/delay", json={"seconds": 60}, timeout=5)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        # a takes the lease and asks the (stuck) platform...
        stuck = pool.submit(httpx.get, a.url + "/admin/apps/default/access_token",
                            headers=ADMIN, timeout=30)
        wait_for(lambda: token_calls(fake_process)["normal"] == 1, 10, what="a's fetch")
        asked = time.monotonic()
        a.signal(signal.SIGKILL)  # ...and dies holding it
        a.wait(5)
        with pytest.raises(httpx.HTTPError):
            stuck.result()
    httpx.post(fake_process.url + "/fake/access_token/delay", json={"seconds": 0}, timeout=5)

    answer = httpx.get(b.url + "/admin/apps/default/access_token", headers=ADMIN, timeout=30)
    took_over = time.monotonic() - asked
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    assert token_valid(fake_process, token)
    # b waited for a's lease to run out (it did not fetch beside a), then fetched once.
    assert token_calls(fake_process) == {"normal": 2, "force": 0}
    # Not before a's lease ran out; then as fast as a poll and one fetch (slack for load).
    assert LEASE_TIME - 1.0 < took_over < LEASE_TIME + 2.5, took_over
    print(f"\nmeasured: a killed mid-refresh; b answered {took_over:.2f} s after a's fetch "
          f"began (lease_time {LEASE_TIME} s)")
    assert_not_logged(token, b, fake_process)
