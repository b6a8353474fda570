"""The HTTP API end to end: a real server on a loopback port, driven by a fake clock."""

import asyncio
import logging
import socket

import pytest
import tornado.httpserver
import tornado.testing
from tornado.iostream import IOStream

from server.app import Minisession
from server.http.httpserver import make_http_server
from server.ids import storage_key
from tests.conftest import SECRET, make_config, on_both_stores, wechat_config


def session_cookies(response) -> list[str]:
    return response.headers.get_list("Set-Cookie")


# -- login -----------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=10)
async def test_login_answers_the_id_in_body_cookie_and_header(client):
    response = await client.login("dev:alice")
    assert response.code == 200
    body = response.json
    token = body["session_id"]
    assert body["openid"] == "alice" and body["expires_in"] == 7200 and body["reused"] is False
    assert body["expires_at"].endswith("Z") and body["created_at"].endswith("Z")
    assert response.headers["X-Session"] == token
    assert body["sessionid"] == token  # what clients copied from tutorials read
    # Exactly one Set-Cookie, ours, in the form the naive client parsers expect.
    assert session_cookies(response) == [
        f"sessionid={token}; Path=/; HttpOnly; Max-Age=7200; SameSite=Lax"]
    assert response.headers["Cache-Control"] == "no-store"
    assert "session_key" not in response.body.decode()


@pytest.mark.parametrize("how", ["json", "form", "form-header-json-body", "query-post",
                                 "query-get"])
@pytest.mark.gen_test(timeout=10)
async def test_login_code_arrives_every_way_clients_send_it(client, how):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    if how == "json":
        response = await client.request("POST", "/login", body='{"code": "dev:bob"}')
    elif how == "form":
        response = await client.request("POST", "/login", body="code=dev%3Abob", headers=form)
    elif how == "form-header-json-body":
        response = await client.request("POST", "/login", body='{"code":"dev:bob"}', headers=form)
    elif how == "query-post":
        response = await client.request("POST", "/login?code=dev:bob")
    else:
        response = await client.request("GET", "/login?code=dev:bob")
    assert response.code == 200, response.body
    assert response.json["openid"] == "bob"


@pytest.mark.parametrize("body, status, error", [
    ("", 400, "missing_code"),
    ('{"code": ""}', 400, "missing_code"),
    ('{"other": 1}', 400, "missing_code"),
    ('{"code": 42}', 400, "code_invalid"),
    ('{"code": "' + "x" * 300 + '"}', 400, "code_invalid"),
    ('{"code": "dev:a\\u0000b"}', 400, "code_invalid"),
    ('{"code": "not-a-dev-code"}', 400, "code_invalid"),  # the dev platform refuses it
    ('{"code": ', 400, "invalid_json"),
    ("[1, 2]", 400, "invalid_json"),
    ('{"code": NaN}', 400, "invalid_json"),
])
@pytest.mark.gen_test(timeout=10)
async def test_bad_login_requests_get_clear_errors(client, body, status, error):
    response = await client.request("POST", "/login", body=body)
    assert (response.code, response.json["error"]) == (status, error)
    assert response.json["message"]
    assert session_cookies(response) == []


@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_each_login_gets_its_own_session_outside_the_reuse_window(client, clock):
    first = (await client.login("dev:alice")).json["session_id"]
    clock.advance(31)
    second = (await client.login("dev:alice")).json["session_id"]
    other = (await client.login("dev:bob")).json["session_id"]
    assert len({first, second, other}) == 3


# -- using the session -----------------------------------------------------------------------

@pytest.mark.parametrize("form", [
    "X-Session: {t}",
    "Cookie: sessionid={t}",
    "Cookie: a=1; sessionid={t}; b=2",
    "Cookie: sessionid={t}; Path=/; HttpOnly; Max-Age=7200; SameSite=Lax",
    'Cookie: sessionid="{t}"',
    "X-Session: sessionid={t}",
])
@pytest.mark.gen_test(timeout=10)
async def test_session_comes_back_in_the_forms_clients_use(client, form):
    token = (await client.login("dev:alice")).json["session_id"]
    name, value = form.format(t=token).split(": ", 1)
    response = await client.request("GET", "/session", headers={name: value})
    assert response.code == 200, response.body
    assert response.json["openid"] == "alice"
    assert set(response.json) >= {"created_at", "expires_at", "expires_in"}


@pytest.mark.gen_test(timeout=10)
async def test_header_wins_over_cookie_and_bad_candidates_are_skipped(client):
    alice = (await client.login("dev:alice")).json["session_id"]
    bob = (await client.login("dev:bob")).json["session_id"]
    both = {"X-Session": alice, "Cookie": f"sessionid={bob}"}
    assert (await client.request("GET", "/session", headers=both)).json["openid"] == "alice"
    # A header that is not ours does not hide a good cookie.
    junk = {"X-Session": "garbage", "Cookie": f"sessionid={bob}"}
    assert (await client.request("GET", "/session", headers=junk)).json["openid"] == "bob"
    # Nor does a signed id whose session has ended (a client that updated only the cookie).
    await client.request("DELETE", "/session", headers={"X-Session": alice})
    stale = {"X-Session": alice, "Cookie": f"sessionid={bob}"}
    assert (await client.request("GET", "/session", headers=stale)).json["openid"] == "bob"
    response = await client.request("GET", "/session", headers={"X-Session": alice})
    assert (response.code, response.json["error"]) == (401, "invalid_session")


@pytest.mark.gen_test(timeout=10)
async def test_answers_are_never_cacheable_or_conditional(client):
    h = {"X-Session": (await client.login("dev:alice")).json["session_id"]}
    first = await client.request("GET", "/session/data", headers=h)
    assert "Etag" not in first.headers and first.headers["Cache-Control"] == "no-store"
    again = await client.request("GET", "/session/data", headers={**h, "If-None-Match": "*"})
    assert again.code == 200 and again.json == {}


@pytest.mark.gen_test(timeout=10)
async def test_missing_forged_and_unknown_ids_are_401(client, server):
    token = (await client.login("dev:alice")).json["session_id"]
    cases = {
        None: "no_session",
        "garbage": "invalid_session",
        token[:-1] + ("A" if token[-1] != "A" else "B"): "invalid_session",   # tampered mac
        ("B" if token[0] != "B" else "C") + token[1:]: "invalid_session",      # tampered id
        token[:40]: "invalid_session",                                        # truncated
        server.service.signer.sign("A" * 32): "invalid_session",              # signed, unknown
    }
    for value, error in cases.items():
        headers = {"X-Session": value} if value else {}
        response = await client.request("GET", "/session", headers=headers)
        assert (response.code, response.json["error"]) == (401, error), value


@pytest.mark.gen_test(timeout=10)
async def test_forged_ids_never_reach_the_store(client, server, store):
    reads = []
    original = store.get

    async def counting_get(session_id):
        reads.append(session_id)
        return await original(session_id)

    store.get = counting_get
    await client.request("GET", "/session", headers={"X-Session": "A" * 32 + "." + "B" * 22})
    assert reads == []


# -- sliding and absolute expiry --------------------------------------------------------------

@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_use_slides_the_expiry_and_idleness_expires_it(client, clock):
    token = (await client.login("dev:alice")).json["session_id"]
    headers = {"X-Session": token}
    for _ in range(3):  # 3 x 1.5 h of use: far past one idle_timeout in total
        clock.advance(5400)
        response = await client.request("GET", "/session", headers=headers)
        assert response.code == 200 and response.json["expires_in"] == 7200
    clock.advance(7200)
    response = await client.request("GET", "/session", headers=headers)
    assert (response.code, response.json["error"]) == (401, "session_expired")
    # Expired is gone: the next try says invalid, not expired again.
    response = await client.request("GET", "/session", headers=headers)
    assert (response.code, response.json["error"]) == (401, "invalid_session")


@pytest.mark.parametrize("config", [make_config(session={"max_lifetime": 10800})])
@pytest.mark.gen_test(timeout=10)
async def test_max_lifetime_caps_a_session_in_constant_use(client, clock):
    token = (await client.login("dev:alice")).json["session_id"]
    headers = {"X-Session": token}
    clock.advance(3600)
    assert (await client.request("GET", "/session", headers=headers)).json["expires_in"] == 7200
    clock.advance(3600)  # two hours in: the cap (3 h) is nearer than the idle timeout
    assert (await client.request("GET", "/session", headers=headers)).json["expires_in"] == 3600
    clock.advance(3600)
    response = await client.request("GET", "/session", headers=headers)
    assert (response.code, response.json["error"]) == (401, "session_expired")


@pytest.mark.gen_test(timeout=10)
async def test_touch_is_skipped_inside_touch_after(client, clock, store):
    login = (await client.login("dev:alice")).json
    raw_id = storage_key(login["session_id"].split(".")[0])
    headers = {"X-Session": login["session_id"]}
    created = (await store.get(raw_id)).touched_at
    clock.advance(59)
    assert (await client.request("GET", "/session", headers=headers)).code == 200
    assert (await store.get(raw_id)).touched_at == created   # no write
    clock.advance(1)
    assert (await client.request("GET", "/session", headers=headers)).code == 200
    assert (await store.get(raw_id)).touched_at == created + 60


# -- concurrent logins -----------------------------------------------------------------------

@pytest.fixture
def config(request):
    """WeChat-backed servers for tests that ask for ``api_base``; dev login otherwise."""
    if "api_base" in request.fixturenames:
        return wechat_config(request.getfixturevalue("api_base"), timeout=1.0)
    return make_config()


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_concurrent_logins_with_different_codes_share_one_session(client, api_base, fake,
                                                                         store):
    responses = await asyncio.gather(*(
        client.login(f"user:dora:{i}") for i in range(10)))
    assert [r.code for r in responses] == [200] * 10
    ids = {r.json["session_id"] for r in responses}
    assert len(ids) == 1
    assert sum(not r.json["reused"] for r in responses) == 1
    assert fake.jscode2session_calls == 10
    # Every answer's cookie and header carry that same id.
    token = ids.pop()
    assert {r.headers["X-Session"] for r in responses} == {token}
    assert all(session_cookies(r)[0].startswith(f"sessionid={token};") for r in responses)


@pytest.mark.gen_test(timeout=20)
async def test_newest_session_key_replaces_the_stored_one(client, api_base, store, server,
                                                         fake):
    await client.login("user:erin:1")
    first = await server.service.session_key("default", "erin")
    await client.login("user:erin:2")
    second = await server.service.session_key("default", "erin")
    assert first and second and first != second
    assert second == fake.session_keys["erin"][-1]  # the one WeChat issued last
    # At rest it is sealed: the store holds neither key in clear.
    sealed = await store.session_key("default", "erin")
    assert sealed.startswith("v1.") and first not in sealed and second not in sealed


@pytest.mark.parametrize("code, status, error, retry_after", [
    ("err:-1", 503, "platform_busy", "1"),
    ("err:40029", 400, "code_invalid", None),
    ("err:40163", 400, "code_invalid", None),
    ("err:40226", 403, "user_blocked", None),
    ("err:45011", 429, "platform_rate_limited", "60"),
    ("err:40125", 502, "platform_misconfigured", None),
    ("err:40002", 502, "platform_error", None),
    ("garbage", 502, "platform_unavailable", None),
    ("http500", 502, "platform_unavailable", None),
    ("slow:3:frank", 504, "platform_timeout", None),
])
@pytest.mark.gen_test(timeout=20)
async def test_wechat_failures_map_to_documented_answers(client, api_base, code, status, error,
                                                         retry_after):
    response = await client.login(code)
    assert (response.code, response.json["error"]) == (status, error)
    assert response.headers.get("Retry-After") == retry_after
    assert session_cookies(response) == []


@pytest.mark.gen_test(timeout=20)
async def test_a_used_code_is_refused(client, api_base, fake):
    code = fake.mint_code("gina")
    assert (await client.login(code)).code == 200
    response = await client.login(code)
    assert (response.code, response.json["error"]) == (400, "code_invalid")


# -- logout ----------------------------------------------------------------------------------

@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_logout_ends_the_session_and_clears_the_cookie(client):
    token = (await client.login("dev:alice")).json["session_id"]
    response = await client.request("DELETE", "/session", headers={"Cookie": f"sessionid={token}"})
    assert response.code == 204
    assert session_cookies(response) == ["sessionid=; Path=/; HttpOnly; Max-Age=0; SameSite=Lax"]
    response = await client.request("GET", "/session", headers={"X-Session": token})
    assert (response.code, response.json["error"]) == (401, "invalid_session")
    # Logging out twice is not an error; logging out with nothing is.
    assert (await client.request("DELETE", "/session", headers={"X-Session": token})).code == 204
    response = await client.request("DELETE", "/session")
    assert (response.code, response.json["error"]) == (401, "no_session")
    response = await client.request("DELETE", "/session", headers={"X-Session": "forged"})
    assert (response.code, response.json["error"]) == (401, "invalid_session")


@pytest.mark.gen_test(timeout=10)
async def test_login_right_after_logout_gets_a_new_session(client):
    token = (await client.login("dev:alice")).json["session_id"]
    await client.request("DELETE", "/session", headers={"X-Session": token})
    assert (await client.login("dev:alice")).json["session_id"] != token


# -- session data ----------------------------------------------------------------------------

@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_session_data_get_put_patch(client):
    token = (await client.login("dev:alice")).json["session_id"]
    h = {"X-Session": token}
    assert (await client.request("GET", "/session/data", headers=h)).json == {}
    put = await client.request("PUT", "/session/data", headers=h,
                               json_body={"cart": [1, 2], "step": "pay", "n": 1})
    assert put.json == {"cart": [1, 2], "step": "pay", "n": 1}
    patch = await client.request("PATCH", "/session/data", headers=h,
                                 json_body={"step": "done", "n": None, "extra": {"x": "中"}})
    assert patch.json == {"cart": [1, 2], "step": "done", "extra": {"x": "中"}}
    assert (await client.request("GET", "/session/data", headers=h)).json == patch.json
    # Clients that send JSON under a form content type work too.
    form = {**h, "Content-Type": "application/x-www-form-urlencoded"}
    replaced = await client.request("PUT", "/session/data", headers=form, body='{"only": true}')
    assert replaced.json == {"only": True}
    # Another user's session sees none of it.
    other = (await client.login("dev:bob")).json["session_id"]
    assert (await client.request("GET", "/session/data", headers={"X-Session": other})).json == {}


@pytest.mark.parametrize("config", [make_config(session={"data_max_bytes": 100})])
@pytest.mark.gen_test(timeout=10)
async def test_session_data_over_the_limit_is_413_and_keeps_the_old_data(client):
    h = {"X-Session": (await client.login("dev:alice")).json["session_id"]}
    await client.request("PUT", "/session/data", headers=h, json_body={"a": "x" * 50})
    for method in ("PUT", "PATCH"):
        response = await client.request(method, "/session/data", headers=h,
                                        json_body={"b": "y" * 120})
        assert (response.code, response.json["error"]) == (413, "data_too_large")
    assert (await client.request("GET", "/session/data", headers=h)).json == {"a": "x" * 50}


@pytest.mark.parametrize("body, error", [
    ("[1]", "invalid_json"),
    ("not json", "invalid_json"),
    ('{"a.b": 1}', "invalid_data"),
    ('{"$set": 1}', "invalid_data"),
    ('{"": 1}', "invalid_data"),
    ('{"a": {"b.c": 1}}', "invalid_data"),
    ('{"a": 99999999999999999999}', "invalid_data"),
    ('{"a": Infinity}', "invalid_json"),
    ("[" * 40 + "]" * 40, "invalid_json"),
    ('{"a":' * 40 + "1" + "}" * 40, "invalid_data"),
])
@pytest.mark.gen_test(timeout=10)
async def test_bad_session_data_is_400_and_changes_nothing(client, body, error):
    h = {"X-Session": (await client.login("dev:alice")).json["session_id"]}
    await client.request("PUT", "/session/data", headers=h, json_body={"keep": 1})
    for method in ("PUT", "PATCH"):
        response = await client.request(method, "/session/data", headers=h, body=body)
        assert (response.code, response.json["error"]) == (400, error), (method, body)
    assert (await client.request("GET", "/session/data", headers=h)).json == {"keep": 1}


@pytest.mark.gen_test(timeout=10)
async def test_session_data_needs_a_session(client):
    for method in ("GET", "PUT", "PATCH"):
        body = None if method == "GET" else "{}"
        response = await client.request(method, "/session/data", body=body)
        assert (response.code, response.json["error"]) == (401, "no_session")


# -- probes and unknown routes ---------------------------------------------------------------

@on_both_stores
@pytest.mark.gen_test(timeout=10)
async def test_health_and_readiness(client):
    assert (await client.request("GET", "/healthz")).json == {"status": "ok"}
    assert (await client.request("GET", "/readyz")).json == {"status": "ready"}


@pytest.mark.gen_test(timeout=10)
async def test_unknown_paths_and_methods_are_json_errors(client):
    response = await client.request("GET", "/nope")
    assert (response.code, response.json["error"]) == (404, "not_found")
    response = await client.request("PUT", "/login", body="")
    assert (response.code, response.json["error"]) == (405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, POST"
    response = await client.request("POST", "/session", body="")
    assert (response.code, response.json["error"]) == (405, "method_not_allowed")


# -- configuration seen from the client -------------------------------------------------------

@pytest.mark.parametrize("config", [make_config(session={
    "cookie_name": "PHPSESSID", "header_name": "X-Token", "cookie_secure": True,
    "cookie_samesite": "strict"})])
@pytest.mark.gen_test(timeout=10)
async def test_custom_cookie_and_header_names(client):
    response = await client.login("dev:alice")
    token = response.json["session_id"]
    assert response.headers["X-Token"] == token
    assert session_cookies(response) == [
        f"PHPSESSID={token}; Path=/; HttpOnly; Max-Age=7200; Secure; SameSite=Strict"]
    assert (await client.request("GET", "/session",
                                 headers={"Cookie": f"PHPSESSID={token}"})).code == 200
    assert (await client.request("GET", "/session", headers={"X-Token": token})).code == 200
    # The default names mean nothing to this server.
    response = await client.request("GET", "/session", headers={"Cookie": f"sessionid={token}"})
    assert response.json["error"] == "no_session"


@pytest.mark.gen_test(timeout=20)
async def test_secret_rotation_keeps_old_ids_until_the_old_secret_is_dropped(
        client, store, clock, io_loop, http_client):
    old_token = (await client.login("dev:alice")).json["session_id"]
    new_secret = "rotated-signing-secret-0123456789abcdefghij"
    servers = []
    for secrets in ([new_secret, SECRET], [new_secret]):
        instance = Minisession(make_config(session={"secrets": secrets}), clock=clock,
                               store=store)
        await instance.start()
        sock, port = tornado.testing.bind_unused_port()
        http, _ = make_http_server(instance.application, instance.config)
        http.add_sockets([sock])
        servers.append((instance, http, f"http://127.0.0.1:{port}"))
    try:
        rotating, retired = servers[0][2], servers[1][2]
        check = {"X-Session": old_token}
        response = await http_client.fetch(rotating + "/session", headers=check,
                                           raise_error=False)
        assert response.code == 200            # old ids still verify during rotation
        fresh = await http_client.fetch(rotating + "/login?code=dev:zoe", raise_error=False)
        fresh_token = fresh.headers["X-Session"]
        response = await http_client.fetch(retired + "/session", headers={"X-Session": fresh_token},
                                           raise_error=False)
        assert response.code == 200            # new ids are signed with the new secret
        response = await http_client.fetch(retired + "/session", headers=check, raise_error=False)
        assert response.code == 401            # dropping the old secret retires old ids
    finally:
        for instance, http, _ in servers:
            http.stop()
            await instance.stop()


# -- secrets stay on the server ---------------------------------------------------------------

@pytest.mark.gen_test(timeout=20)
async def test_no_secret_reaches_a_response_or_a_log_line(client, api_base, server, caplog):
    caplog.set_level(logging.DEBUG)
    login = await client.login("user:hana:1")
    token = login.json["session_id"]
    h = {"X-Session": token}
    await client.request("GET", "/session", headers=h)
    await client.request("PATCH", "/session/data", headers=h, json_body={"a": 1})
    await client.request("GET", "/login?code=user:hana:2")
    await client.request("DELETE", "/session", headers=h)
    session_key = await server.service.session_key("default", "hana")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "minisession.access" in {record.name for record in caplog.records}
    for secret in (session_key, token, token.split(".")[0], SECRET, "user:hana:2",
                   "test-secret-0123456789abcdef"):
        assert secret not in logged
    assert session_key not in login.body.decode() and session_key not in str(login.headers)


# -- connections -------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=10)
async def test_nagle_stays_off_for_the_whole_connection(server, app):
    """Each answer leaves at once, on every request of a keep-alive connection: TCP_NODELAY is
    set when the connection is taken and stays set, where Tornado would switch it on for the
    last write of each answer and off after it (two system calls per request)."""
    http, _ = make_http_server(app, server.config)
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, address = listener.accept()
    stream = IOStream(accepted)
    try:
        http.handle_stream(stream, address)
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        stream.set_nodelay(False)  # what HTTP1Connection does after each answer
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        stream.close()
        client.close()
        listener.close()
