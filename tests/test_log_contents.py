"""What the server's own log lines may hold, whatever the client sends (issue 11).

No id, code, key or user data in any log line: not from the MongoDB driver's debug logging
(which writes whole commands, session data included, when its logger is enabled), and not from
the access log, whose path would otherwise carry whatever a client put in it (an id pasted into
a URL by mistake, an openid in an admin path).
"""

import logging

import pytest

from tests.conftest import make_config, on_both_stores

MARKER = "zq-user-data-marker-51c9"
ADMIN_KEY = "admin-key-for-log-contents-0123456789abcdef"


@pytest.fixture
def config():
    return make_config(admin={"enabled": True, "api_keys": [ADMIN_KEY]})


def logged(caplog) -> str:
    return "\n".join(f"{r.name}: {r.getMessage()}" for r in caplog.records)


@on_both_stores
@pytest.mark.gen_test(timeout=20)
async def test_session_data_never_reaches_the_log_even_at_debug(client, caplog):
    # At DEBUG, as an operator chasing a problem would run it (log.level = "debug").
    caplog.set_level(logging.DEBUG)
    h = {"X-Session": (await client.login("dev:alice")).json["session_id"]}
    for method in ("PUT", "POST"):
        response = await client.request(method, "/session/data", headers=h,
                                        json_body={"note": MARKER})
        assert response.code == 200
    assert (await client.request("GET", "/session/data", headers=h)).json == {"note": MARKER}
    assert caplog.records, "nothing was logged at all: the check would prove nothing"
    assert MARKER not in logged(caplog)


@pytest.mark.gen_test(timeout=20)
async def test_the_access_log_holds_no_path_a_client_or_an_admin_path_chose(client, caplog):
    caplog.set_level(logging.DEBUG)
    token = (await client.login("dev:alice")).json["session_id"]
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    # A client that pasted its id into the URL, and admin paths that name a user.
    assert (await client.request("GET", f"/session/{token}")).code == 404
    assert (await client.request("GET", f"/{MARKER}?x=1")).code == 404
    assert (await client.request("PUT", f"/admin/bindings/{MARKER}-openid", headers=admin,
                                 json_body={"user_id": "u-1"})).code == 200
    assert (await client.request("GET", f"/admin/bindings/{MARKER}-openid",
                                 headers=admin)).code == 200
    assert (await client.request("DELETE", f"/admin/sessions/{MARKER}-handle",
                                 headers=admin)).code == 404
    assert (await client.request("GET", f"/admin/apps/default/bindings/{MARKER}-openid",
                                 headers=admin)).code == 200
    access = [r.getMessage() for r in caplog.records if r.name == "minisession.access"]
    # Still useful to an operator: one line per request, with the route and the status.
    assert len(access) == 7, access  # the login, then the six above
    assert sum(line.startswith("404 GET (no route) ") for line in access) == 2, access
    assert sum(" /admin/bindings/{} " in line for line in access) == 2, access
    assert any(line.startswith("404 DELETE /admin/sessions/{} ") for line in access), access
    # A route's template by its own pattern, not another route's of the same handler.
    assert any(line.startswith("200 GET /admin/apps/{}/bindings/{} ") for line in access), access
    assert MARKER not in logged(caplog)
    assert token not in logged(caplog)


@pytest.mark.gen_test(timeout=20)
async def test_a_method_the_client_made_up_is_not_logged_as_sent(client, http_client, base_url,
                                                                 caplog):
    """A method is any token, and a session id is one: a client (or a script gone wrong) that
    sends its id as the method must not find it in the access log."""
    caplog.set_level(logging.DEBUG)
    token = (await client.login("dev:alice")).json["session_id"]
    for method, path in ((token, "/session"), (MARKER, "/auth"), ("PROPFIND", "/healthz")):
        answer = await http_client.fetch(base_url + path, method=method, raise_error=False,
                                         allow_nonstandard_methods=True)
        assert answer.code in (401, 405), (method, answer.code)
    access = [r.getMessage() for r in caplog.records if r.name == "minisession.access"]
    assert len(access) == 4, access  # the login, then the three above
    assert all(" other " in line for line in access[1:]), access
    assert token not in logged(caplog) and MARKER not in logged(caplog)
