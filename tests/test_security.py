"""Security properties a user relies on (see docs/security.md): what a database dump holds,
key rotation, session id rotation, login rate limits and who the client is behind proxies."""

import asyncio
import dataclasses

import pytest
import tornado.httpserver
import tornado.testing

from server.app import Minisession
from server.http.client_address import client_address, parse_networks
from server.http.httpserver import make_http_server
from server.ids import storage_key
from server.sealing import new_key
from tests.conftest import make_config, on_both_stores, wechat_config

# -- a leaked database ------------------------------------------------------------------------


@pytest.fixture
def backend(request):
    """MongoDB unless a test asks for both stores: the dump test needs a real database."""
    return getattr(request, "param", "mongodb")


@pytest.fixture
def config(request):
    if "api_base" in request.fixturenames:
        return wechat_config(request.getfixturevalue("api_base"), timeout=2.0)
    return make_config()


async def dump(store) -> str:
    """Everything the store's database holds, as one text: what a stolen backup would show."""
    db = store._client[store._database_name]  # the driver client the store was given
    docs = []
    for name in await db.list_collection_names():
        docs += [repr(doc) async for doc in db[name].find()]
    return "\n".join(docs)


@pytest.mark.gen_test(timeout=30)
async def test_a_database_dump_holds_no_usable_id_and_no_session_key(client, api_base, fake,
                                                                     server, store):
    tokens = []
    for code in ("user:ivy:1", "user:ivy:2", "user:jay:1"):  # ivy twice: a reused session
        tokens.append((await client.login(code)).json["session_id"])
    await client.request("PATCH", "/session/data", headers={"X-Session": tokens[0]},
                         json_body={"cart": [1, 2]})
    text = await dump(store)
    assert "ivy" in text and "cart" in text  # the dump is real and has the sessions in it
    session_keys = [key for keys in fake.session_keys.values() for key in keys]
    assert len(session_keys) == 3
    for secret in tokens + [t.split(".")[0] for t in tokens] + [t.split(".")[1] for t in tokens]:
        assert secret not in text
    for key in session_keys:
        assert key not in text and key.rstrip("=") not in text
    # What the dump does hold, the storage key, opens nothing.
    for token in tokens:
        stolen = storage_key(token.split(".")[0])
        assert stolen in text
        for header in ({"X-Session": stolen}, {"Cookie": f"sessionid={stolen}"}):
            response = await client.request("GET", "/session", headers=header)
            assert (response.code, response.json["error"]) == (401, "invalid_session")
    # While the server itself still reads them.
    assert await server.service.session_key("default", "ivy") == fake.session_keys["ivy"][-1]


# -- rotating the encryption key --------------------------------------------------------------

@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_encryption_keys_rotate_without_logging_anyone_out(store, clock, http_client):
    old, new = new_key(), new_key()

    def server_with(keys):
        return Minisession(make_config(store={"encryption_keys": keys}), clock=clock,
                           store=store)

    before, during, after = server_with([old]), server_with([new, old]), server_with([new])
    first, _ = await before.service.login(None, "dev:kim")
    # During rotation, what the old key sealed still opens, and new logins seal with the new key.
    assert await during.service.session_key("default", "kim") == await before.service.session_key("default", "kim")
    assert (await during.service.authenticate([first.token])).record.openid == "kim"
    again, reused = await during.service.login(None, "dev:kim")  # within the reuse window
    assert reused and again.token == first.token
    # Once the old key is dropped: the session still works (ids are signed, not sealed), and a
    # login in the reuse window whose recent id can no longer be unsealed gets a fresh session.
    key_now = await after.service.session_key("default", "kim")
    assert key_now is not None  # the login "during" rotation re-sealed it with the new key
    clock.advance(1)
    assert (await after.service.authenticate([first.token])).record.openid == "kim"
    await before.service.login(None, "dev:lee")
    assert await after.service.session_key("default", "lee") is None  # sealed with the dropped key only
    fresh, reused = await after.service.login(None, "dev:lee")
    assert not reused and fresh.token != first.token
    assert await after.service.session_key("default", "lee") is not None


# -- session id rotation ----------------------------------------------------------------------

@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_rotation_issues_a_fresh_id_and_the_old_one_is_rejected(client, clock):
    login = (await client.login("dev:max")).json
    old = {"X-Session": login["session_id"]}
    await client.request("PUT", "/session/data", headers=old, json_body={"role": "guest"})
    clock.advance(120)
    response = await client.request("POST", "/session/rotate", headers=old)
    assert response.code == 200
    token = response.json["session_id"]
    assert token != login["session_id"] and response.json["sessionid"] == token
    assert response.headers["X-Session"] == token
    assert response.headers["Set-Cookie"].startswith(f"sessionid={token}; Path=/; HttpOnly;")
    # Same session: owner, data, creation time; the old id is now worthless.
    assert response.json["openid"] == "max"
    assert response.json["created_at"] == login["created_at"]
    new = {"Cookie": f"sessionid={token}"}
    assert (await client.request("GET", "/session/data", headers=new)).json == {"role": "guest"}
    for method, path in (("GET", "/session"), ("GET", "/session/data"),
                         ("POST", "/session/rotate")):
        response = await client.request(method, path, headers=old)
        assert (response.code, response.json["error"]) == (401, "invalid_session")
    assert (await client.request("GET", "/session", headers=new)).code == 200


@pytest.mark.gen_test(timeout=20)
async def test_rotation_needs_a_live_session_and_post(client):
    response = await client.request("POST", "/session/rotate")
    assert (response.code, response.json["error"]) == (401, "no_session")
    response = await client.request("GET", "/session/rotate")
    assert (response.code, response.json["error"]) == (405, "method_not_allowed")
    assert response.headers["Allow"] == "POST"


@pytest.mark.gen_test(timeout=20)
async def test_concurrent_rotations_leave_exactly_one_working_id(client):
    old = {"X-Session": (await client.login("dev:ned")).json["session_id"]}
    responses = await asyncio.gather(*(
        client.request("POST", "/session/rotate", headers=old) for _ in range(5)))
    winners = [r for r in responses if r.code == 200]
    assert len(winners) >= 1
    assert all(r.json["error"] == "invalid_session" for r in responses if r.code != 200)
    working = []
    for response in winners:
        check = await client.request("GET", "/session",
                                     headers={"X-Session": response.json["session_id"]})
        working.append(check.code == 200)
    assert working.count(True) == 1


# -- login rate limits ------------------------------------------------------------------------

async def serve(config, clock, store=None):
    instance = Minisession(config, clock=clock, store=store)
    await instance.start()
    sock, port = tornado.testing.bind_unused_port()
    http, _ = make_http_server(instance.application, instance.config)
    http.add_sockets([sock])
    return instance, http, f"http://127.0.0.1:{port}"


async def logins(http_client, base, n, headers=None, openid="ola"):
    statuses = []
    for i in range(n):
        response = await http_client.fetch(f"{base}/login?code=dev:{openid}{i}", raise_error=False,
                                           headers=headers or {})
        statuses.append(response)
    return statuses


@pytest.mark.gen_test(timeout=20)
async def test_logins_past_the_per_address_limit_get_429_with_retry_after(clock, http_client):
    instance, http, base = await serve(make_config(login={"rate_per_address": 3}), clock)
    try:
        answers = await logins(http_client, base, 5)
        assert [r.code for r in answers] == [200, 200, 200, 429, 429]
        assert answers[3].headers["Retry-After"] == "20"  # 3 a minute: one more in 20 s
        assert b'"error":"rate_limited"' in answers[3].body
        assert "Set-Cookie" not in answers[3].headers
        clock.advance(20)
        assert [r.code for r in await logins(http_client, base, 2)] == [200, 429]
        # Other requests are not limited.
        check = await http_client.fetch(f"{base}/session", raise_error=False,
                                        headers={"X-Session": answers[0].headers["X-Session"]})
        assert check.code == 200
    finally:
        http.stop()
        await instance.stop()


@pytest.mark.gen_test(timeout=20)
async def test_a_flood_never_reaches_wechat(clock, http_client, api_base, fake):
    config = wechat_config(api_base)
    config = dataclasses.replace(config, login=dataclasses.replace(
        config.login, rate_per_address=2, rate_overall=0))
    instance, http, base = await serve(config, clock)
    try:
        answers = [await http_client.fetch(f"{base}/login?code=user:pia:{i}", raise_error=False)
                   for i in range(10)]
        assert [r.code for r in answers] == [200, 200] + [429] * 8
        assert fake.jscode2session_calls == 2
    finally:
        http.stop()
        await instance.stop()


@pytest.mark.gen_test(timeout=20)
async def test_forwarded_for_counts_only_behind_a_trusted_proxy(clock, http_client):
    spoofed = [{"X-Forwarded-For": f"198.51.100.{i}"} for i in range(4)]
    # Not trusted: every spoofed address is still the one socket address, limited as one.
    instance, http, base = await serve(make_config(login={"rate_per_address": 2}), clock)
    try:
        codes = [(await logins(http_client, base, 1, h))[0].code for h in spoofed]
        assert codes == [200, 200, 429, 429]
    finally:
        http.stop()
        await instance.stop()
    # Behind a trusted proxy (us, on loopback), each forwarded address has its own allowance,
    # and the overall limit still holds for all of them together.
    config = make_config(login={"rate_per_address": 2, "rate_overall": 5},
                         server={"trusted_proxies": ["127.0.0.1/32", "::1"]})
    instance, http, base = await serve(config, clock)
    try:
        codes = [(await logins(http_client, base, 1, h))[0].code for h in spoofed]
        assert codes == [200, 200, 200, 200]
        assert (await logins(http_client, base, 1, spoofed[0]))[0].code == 200
        assert (await logins(http_client, base, 1, spoofed[1]))[0].code == 429  # overall: 5
    finally:
        http.stop()
        await instance.stop()


TRUSTED = parse_networks(["10.0.0.0/8", "127.0.0.1"])


@pytest.mark.parametrize("peer, forwarded, expected", [
    ("203.0.113.9", ["1.2.3.4"], "203.0.113.9"),                  # untrusted peer: header ignored
    ("10.0.0.2", ["1.2.3.4"], "1.2.3.4"),
    ("10.0.0.2", ["6.6.6.6, 1.2.3.4"], "1.2.3.4"),                # left of it: client-written
    ("10.0.0.2", ["1.2.3.4, 10.9.9.9"], "1.2.3.4"),               # through two trusted proxies
    ("10.0.0.2", ["6.6.6.6", "1.2.3.4"], "1.2.3.4"),              # header given twice
    ("10.0.0.2", ["1.2.3.4:5555"], "1.2.3.4"),
    ("10.0.0.2", ["[2001:db8::7]:443"], "2001:db8::7"),
    ("10.0.0.2", ["not-an-ip"], "10.0.0.2"),                      # garbage: the proxy itself
    ("10.0.0.2", [], "10.0.0.2"),
    ("10.0.0.2", ["10.1.1.1, 10.2.2.2"], "10.0.0.2"),             # only proxies in the chain
    ("::ffff:10.0.0.2", ["1.2.3.4"], "1.2.3.4"),                 # IPv4-mapped peer
])
def test_client_address(peer, forwarded, expected):
    assert client_address(peer, forwarded, TRUSTED) == expected
    assert client_address(peer, forwarded, ()) == peer  # no proxies configured: never believed


# -- fixation ---------------------------------------------------------------------------------

@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_login_never_adopts_an_id_the_client_brings(client, clock):
    # The attacker plants their own (valid) id in the victim's client, then the victim logs in.
    planted = (await client.login("dev:attacker")).json["session_id"]
    clock.advance(60)  # past the reuse window: nothing to share anyway
    for headers in ({"Cookie": f"sessionid={planted}"}, {"X-Session": planted}):
        victim = await client.login("dev:victim", headers=headers)
        token = victim.json["session_id"]
        assert token != planted and victim.json["openid"] == "victim"
        # The planted id still belongs to the attacker alone, and sees none of the victim's data.
        await client.request("PUT", "/session/data", headers={"X-Session": token},
                             json_body={"card": "4111"})
        mine = await client.request("GET", "/session/data", headers={"X-Session": planted})
        assert mine.json == {}
        who = await client.request("GET", "/session", headers={"X-Session": planted})
        assert who.json["openid"] == "attacker"
    # An id the client makes up is never accepted, however well-formed.
    made_up = "A" * 32 + "." + "B" * 22
    response = await client.request("GET", "/session", headers={"X-Session": made_up})
    assert (response.code, response.json["error"]) == (401, "invalid_session")
