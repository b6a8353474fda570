"""Every answer hides the server's software and version, and forbids content sniffing."""

import asyncio
import email.utils
import time
from urllib.parse import urlsplit

import pytest

from tests.conftest import make_config
from tests.rawhttp import exchange, request

MAX_BODY = 65536


def flaws(headers) -> list[str]:
    """What is wrong with an answer's headers: a Server header, a missing nosniff."""
    headers = list(headers)
    found = [f"{name}: {value}" for name, value in headers if name.lower() == "server"]
    nosniff = [value for name, value in headers if name.lower() == "x-content-type-options"]
    if nosniff != ["nosniff"]:
        found.append(f"X-Content-Type-Options: {nosniff}")
    return found


@pytest.mark.parametrize("config", [make_config(session={"data_max_bytes": 100})])
@pytest.mark.gen_test(timeout=20)
async def test_no_server_header_and_nosniff_on_every_answer(client, base_url):
    token = (await client.login("dev:alice")).json["session_id"]
    h = {"X-Session": token}
    answers = [
        (200, await client.request("GET", "/healthz")),
        (200, await client.request("GET", "/session", headers=h)),
        (401, await client.request("GET", "/session/data")),
        (404, await client.request("GET", "/nope")),
        (405, await client.request("PUT", "/login", body="")),
        (413, await client.request("PUT", "/session/data", headers=h,
                                   json_body={"a": "x" * 200})),
        (204, await client.request("DELETE", "/session", headers=h)),
    ]
    assert [response.code for _, response in answers] == [status for status, _ in answers]
    found = {f"{status} {response.request.method} {urlsplit(response.effective_url).path}":
             flaws(response.headers.get_all()) for status, response in answers}
    # 413 for a body announced too large: answered before the body is read, over a raw socket.
    port = urlsplit(base_url).port
    too_large = request("POST", "/login", [("Content-Length", str(MAX_BODY + 1))], length=False)
    # A blocking socket: in a thread, while this loop serves the request.
    raw = await asyncio.get_running_loop().run_in_executor(None, exchange, port, too_large)
    assert (raw.status, raw.error) == (413, "body_too_large")
    found["413 POST /login (announced too large)"] = flaws(raw.headers)
    assert {answer: flaw for answer, flaw in found.items() if flaw} == {}


@pytest.mark.gen_test(timeout=20)
async def test_every_answer_is_dated_now(client):
    # The Date header is made once a second (handlers/base.py): it must still be the time of
    # the answer, in HTTP's format (RFC 9110, 5.6.7), on answers and on errors alike.
    token = (await client.login("dev:alice")).json["session_id"]
    for path, headers, status in [("/session", {"X-Session": token}, 200),
                                  ("/session", {}, 401), ("/nope", {}, 404)]:
        before = time.time()
        response = await client.request("GET", path, headers=headers)
        after = time.time()
        assert response.code == status
        dates = response.headers.get_list("Date")
        assert len(dates) == 1 and dates[0].endswith(" GMT"), dates
        sent = email.utils.parsedate_to_datetime(dates[0]).timestamp()
        assert int(before) <= sent <= after, (path, dates[0], before, after)
        await asyncio.sleep(1.05 - time.time() % 1)  # the next answer in the next second
