"""Prometheus metrics (issue 16): a real ``minisession serve`` scraped on its own listener with
prometheus-client's own parser; the figures move as requests are made, one consistent view
across ``server.workers = 2``, and no label ever carries an id, an openid or a code."""

import concurrent.futures
import json
import os
import re
import signal
import socket
import uuid
from pathlib import Path

import httpx
import pymongo
import pytest
from prometheus_client import REGISTRY
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from devtools.processes import FakePlatformsProcess, ServerProcess, server_config, wait_for
from server.config import ConfigError
from server.instrument import InstrumentedStore
from server.app import make_store
from tests.conftest import make_config, on_both_stores, open_store
from tests.test_admin import ADMIN, API_KEY

ROOT = Path(__file__).resolve().parent.parent


# -- scraping -----------------------------------------------------------------------------------

class Scrape:
    """One scrape of /metrics, parsed by prometheus-client."""

    def __init__(self, text: str):
        self.families = list(text_string_to_metric_families(text))
        self.samples = [sample for family in self.families for sample in family.samples]

    def value(self, name: str, **labels) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels``."""
        return sum(sample.value for sample in self.samples if sample.name == name
                   and all(sample.labels.get(k) == v for k, v in labels.items()))

    def label_values(self) -> set[str]:
        return {value for sample in self.samples for value in sample.labels.values()}

    def names(self) -> set[str]:
        """Every name a query may use: the families exported (with or without samples yet)
        and the series each type has (_total, _bucket...)."""
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
        return {family.name + suffix for family in self.families
                for suffix in ("", *suffixes.get(family.type, ()))}


def scrape(url: str) -> Scrape:
    # A new connection each time: with several workers, any of them may answer.
    response = httpx.get(url, timeout=10, headers={"Connection": "close"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return Scrape(response.text)


def delta(before: Scrape, after: Scrape, name: str, **labels) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


def mint(fake: FakePlatformsProcess, openid: str) -> str:
    """A real-looking one-time WeChat code for ``openid`` (the fake's wx.login())."""
    return httpx.post(fake.url + "/fake/login", json={"openid": openid}, timeout=5).json()["code"]


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    with FakePlatformsProcess(tmp_path_factory.mktemp("metrics-fake")).start() as process:
        yield process


@pytest.fixture(scope="module")
def single(fake, tmp_path_factory):
    """One process, memory store, WeChat login through the fake, 4 logins a minute per
    address."""
    config = server_config(wechat_base=fake.url, login={"rate_per_address": 4})
    with ServerProcess(config, tmp_path_factory.mktemp("metrics-single")).start() as server:
        server.wait_ready()
        yield server


# -- one process ----------------------------------------------------------------------------------

def test_figures_move_as_requests_are_made_and_labels_hold_no_user_value(single, fake):
    openid = f"metrics-{uuid.uuid4().hex[:10]}"
    before = scrape(single.metrics_url)
    public = httpx.get(single.url + "/metrics", timeout=5)
    assert public.status_code == 404  # never on the public port
    assert public.json()["error"] == "not_found"

    with httpx.Client(base_url=single.url, timeout=10) as client:
        codes = [mint(fake, openid), mint(fake, openid)]
        first = client.post("/login", json={"code": codes[0]}).json()
        second = client.post("/login", json={"code": codes[1]}).json()
        assert (first["reused"], second["reused"]) == (False, True)
        token = second["session_id"]
        assert httpx.get(single.url + "/session", timeout=5).status_code == 401  # no cookie
        assert client.get("/session", headers={"X-Session": token}).status_code == 200
        busy = client.post("/login", json={"code": f"err:-1:{uuid.uuid4().hex[:6]}"})
        assert busy.json()["error"] == "platform_busy"
        assert client.delete("/session", headers={"X-Session": token}).status_code == 204
        # 3 logins so far; the per-address limit (4 a minute) refuses within a few more.
        statuses = [client.post("/login", json={"code": f"err:40029:{n}"}).status_code
                    for n in range(3)]
    refused, invalid = statuses.count(429), statuses.count(400)
    assert refused >= 1 and refused + invalid == 3, statuses

    after = scrape(single.metrics_url)
    assert delta(before, after, "minisession_logins_total", app="default", outcome="new") == 1
    assert delta(before, after, "minisession_logins_total", app="default", outcome="reused") == 1
    requests = "minisession_http_requests_total"
    assert delta(before, after, requests, route="/login", method="POST", status="200") == 2
    assert delta(before, after, requests, route="/session", method="GET", status="401") == 1
    assert delta(before, after, requests, route="/session", method="DELETE", status="204") == 1
    assert delta(before, after, requests, route="/login", method="POST", status="429") == refused
    assert delta(before, after, requests, route="(no route)", method="GET", status="404") == 1
    assert delta(before, after, "minisession_http_request_duration_seconds_count",
                 route="/login", method="POST") == 3 + 3
    assert delta(before, after, "minisession_login_rate_limited_total",
                 limit="per_address") == refused
    calls = "minisession_platform_calls_total"
    wechat = {"platform": "wechat", "endpoint": "code2Session"}
    assert delta(before, after, calls, outcome="ok", **wechat) == 2
    assert delta(before, after, calls, outcome="platform_busy", **wechat) == 1
    assert delta(before, after, calls, outcome="code_invalid", **wechat) == invalid
    assert delta(before, after, "minisession_platform_call_duration_seconds_count",
                 **wechat) == 3 + invalid
    store_ops = "minisession_store_operation_duration_seconds_count"
    assert delta(before, after, store_ops, operation="login") == 2
    assert delta(before, after, store_ops, operation="get") >= 2
    assert delta(before, after, store_ops, operation="delete") == 1
    assert delta(before, after, "minisession_sessions_revoked_total", kind="logout") == 1
    assert after.value("minisession_store_errors_total") == 0
    # One process: the plain registry, with its process metrics.
    assert after.value("process_cpu_seconds_total") > 0

    # No label carries a user value: not the token, the openid, a code, nor any path.
    user_values = [token, token.split(".")[0], openid, *codes]
    assert not [v for v in after.label_values() for u in user_values if u in v]
    assert all(s.labels.get("route", "/").startswith(("/", "(")) for s in after.samples)


def test_the_calls_with_the_access_token_are_counted_by_endpoint_and_outcome(fake,
                                                                            tmp_path):
    """stable_token, getuserphonenumber, checksession and resetusersessionkey: counted and
    timed like code2Session, and no token, openid, code or number in a label."""
    config = server_config(wechat_base=fake.url,
                           admin={"enabled": True, "api_keys": [API_KEY]})
    openid = f"metrics-{uuid.uuid4().hex[:10]}"
    with ServerProcess(config, tmp_path).start() as server:
        server.wait_ready()
        before = scrape(server.metrics_url)
        with httpx.Client(base_url=server.url, timeout=10) as client:
            session = {"X-Session": client.post("/login", json={"code": mint(fake, openid)})
                       .json()["session_id"]}
            code = httpx.post(fake.url + "/fake/phone", json={"openid": openid},
                              timeout=5).json()["code"]
            number = client.post("/platform/phone", headers=session, json={"code": code})
            assert number.status_code == 200, number.text
            used = client.post("/platform/phone", headers=session, json={"code": code})
            assert used.json()["error"] == "code_invalid"
            assert client.get("/platform/check", headers=session).json() == {"valid": True}
            # WeChat drops the token: the next call is refused once, then runs again.
            httpx.post(fake.url + "/fake/access_token/invalidate", timeout=5)
            assert client.get("/platform/check", headers=session).json() == {"valid": True}
            reset = client.post(f"/admin/apps/default/users/{openid}/session_key/reset",
                                headers=ADMIN)
            assert reset.status_code == 200, reset.text
            token = client.get("/admin/apps/default/access_token",
                               headers=ADMIN).json()["access_token"]
        after = scrape(server.metrics_url)

    def moved(endpoint, **labels):
        return delta(before, after, "minisession_platform_calls_total", platform="wechat",
                     endpoint=endpoint, **labels)

    assert moved("stable_token", outcome="ok") == 2  # the first token, then the forced one
    assert moved("getuserphonenumber", outcome="ok") == 1
    assert moved("getuserphonenumber", outcome="code_invalid") == 1
    assert moved("checksession", outcome="ok") == 2
    assert moved("checksession", outcome="access_token_rejected") == 1
    assert moved("resetusersessionkey", outcome="ok") == 1
    durations = {endpoint: delta(before, after, "minisession_platform_call_duration_seconds_"
                                 "count", platform="wechat", endpoint=endpoint)
                 for endpoint in ("stable_token", "getuserphonenumber", "checksession",
                                  "resetusersessionkey")}
    assert durations == {"stable_token": 2, "getuserphonenumber": 2, "checksession": 3,
                         "resetusersessionkey": 1}
    user_values = [token, openid, code, number.json()["purePhoneNumber"],
                   session["X-Session"].split(".")[0]]
    assert not [v for v in after.label_values() for u in user_values if u in v]


def test_an_unknown_method_or_path_is_not_a_new_label(single):
    before = scrape(single.metrics_url)
    # A raw request: a method token and a path the client made up.
    with socket.create_connection(("127.0.0.1", single.port), timeout=5) as sock:
        sock.sendall(b"BREW /pot-secret-path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while sock.recv(4096):
            pass
    after = scrape(single.metrics_url)
    assert "BREW" not in after.label_values()
    assert not [v for v in after.label_values() if "pot-secret-path" in v]
    assert delta(before, after, "minisession_http_requests_total",
                 route="(no route)", method="other") == 1


def test_every_metric_of_the_grafana_dashboard_exists(single):
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"]
             for target in panel.get("targets", ())]
    used = {name for expr in exprs for name in re.findall(r"\bminisession_[a-z0-9_]+", expr)}
    assert len(exprs) >= 8 and len(used) >= 8
    known = scrape(single.metrics_url).names()
    assert used - known == set()


def test_the_operations_doc_alerts_use_existing_metrics(single):
    # The alert rules in docs/operations.md are Prometheus expressions over these names.
    doc = (ROOT / "docs" / "operations.md").read_text()
    used = set(re.findall(r"\bminisession_[a-z0-9_]+", doc))
    known = scrape(single.metrics_url).names()
    assert used and used - known == set()


# -- in-process: the store wrapper and session lifecycle counters, on both stores --------------

@pytest.fixture
def config():
    return make_config(admin={"enabled": True, "api_keys": [API_KEY]},
                       login={"rate_per_address": 0})


@pytest.fixture
def store(backend, io_loop, request):
    return InstrumentedStore(open_store(backend, io_loop, request))


def _value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@on_both_stores
@pytest.mark.gen_test(timeout=30)
async def test_sessions_rotated_revoked_and_expired_are_counted(client, server, clock):
    names = {"rotated": ("minisession_sessions_rotated_total", {}),
             "supersede": ("minisession_sessions_revoked_total", {"kind": "rotation_supersede"}),
             "admin": ("minisession_sessions_revoked_total", {"kind": "admin"}),
             "on_read": ("minisession_sessions_expired_total", {"how": "on_read"}),
             "purged": ("minisession_sessions_expired_total", {"how": "purged"}),
             "renames": ("minisession_store_operation_duration_seconds_count",
                         {"operation": "rename"})}
    before = {key: _value(name, **labels) for key, (name, labels) in names.items()}

    token = (await client.login("dev:rotor")).json["session_id"]
    rotated = await client.request("POST", "/session/rotate", headers={"X-Session": token})
    assert rotated.code == 200
    for name in ("ann", "bob", "cid", "dan"):  # four sessions left to expire
        assert (await client.login(f"dev:{name}-{uuid.uuid4().hex[:4]}")).code == 200
    revoke = await client.request("DELETE", "/admin/sessions?openid=rotor", headers=ADMIN)
    assert revoke.json == {"revoked": 1}
    expiring = (await client.login("dev:late")).json["session_id"]
    clock.advance(server.config.session.idle_timeout + 1)
    expired = await client.request("GET", "/session", headers={"X-Session": expiring})
    assert expired.json["error"] == "session_expired"
    await server._maintain()  # the periodic purge: the four other sessions are past expiry

    moved = {key: _value(name, **labels) - before[key] for key, (name, labels) in names.items()}
    # A MongoDB with TTL indexes purges by itself: minisession then purges (and counts) none.
    purged = 4 if server.store.needs_purge else 0
    assert moved == {"rotated": 1, "supersede": 1, "admin": 1, "on_read": 1, "purged": purged,
                     "renames": 1}


@pytest.fixture
def down_config():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return make_config(store={"backend": "mongodb", "timeout": 0.5,
                              "mongodb_uri": f"mongodb://127.0.0.1:{port}/"})


@pytest.mark.gen_test(timeout=30)
async def test_store_errors_are_counted_by_operation(down_config):
    store = make_store(down_config)  # instrumented, as the server builds it
    before = _value("minisession_store_errors_total", operation="get", error="unavailable")
    for _ in range(2):
        with pytest.raises(Exception) as raised:
            await store.get("a-storage-key")
        assert type(raised.value).__name__ == "StoreUnavailable"
    assert _value("minisession_store_errors_total", operation="get",
                  error="unavailable") - before == 2
    await store.close()


# -- configuration ----------------------------------------------------------------------------

def test_metrics_listen_is_checked_and_a_public_one_is_allowed_with_a_notice():
    assert make_config().admin.metrics_listen == "127.0.0.1:9464"
    assert make_config(admin={"metrics_listen": ""}).admin.metrics_listen == ""
    assert not any("metrics_listen" in n
                   for n in make_config(admin={"metrics_listen": "[::1]:9100"}).notices)
    public = make_config(admin={"metrics_listen": "0.0.0.0:9464"})
    assert any("metrics_listen" in n and "firewall" in n for n in public.notices)
    for bad in ("9464", "localhost:", "host:99999", ":9464", 9464):
        with pytest.raises(ConfigError, match="admin.metrics_listen"):
            make_config(admin={"metrics_listen": bad})


def test_empty_metrics_listen_serves_no_metrics(tmp_path):
    config = server_config()
    config["admin"]["metrics_listen"] = ""
    with ServerProcess(config, tmp_path).start() as server:
        server.wait_ready()
        assert "metrics on" not in server.log()
        assert httpx.get(server.url + "/metrics", timeout=5).status_code == 404


def test_a_busy_metrics_port_is_a_clear_start_up_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = server_config()
        config["admin"]["metrics_listen"] = f"127.0.0.1:{taken.getsockname()[1]}"
        server = ServerProcess(config, tmp_path)
        with pytest.raises(RuntimeError, match="cannot listen for metrics"):
            server.start()


# -- two workers, MongoDB store -----------------------------------------------------------------

@pytest.fixture
def database(mongodb_uri):
    name = f"minisession_metrics_{uuid.uuid4().hex[:12]}"
    yield name
    with pymongo.MongoClient(mongodb_uri, serverSelectionTimeoutMS=5000) as client:
        client.drop_database(name)


def _children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return {int(child) for child in listing.read().split()}


def _requests_in(directory: Path, pid: int) -> float:
    """What one worker counted of GET /session 200, read from its own file."""
    total = 0.0
    for key, value, *_ in MmapedDict.read_all_values_from_file(str(directory /
                                                                     f"counter_{pid}.db")):
        _, name, labels, _ = json.loads(key)
        if name == "minisession_http_requests_total" and labels.get("route") == "/session" \
                and labels.get("status") == "200":
            total += value
    return total


def test_two_workers_report_one_consistent_view(mongodb_uri, database, tmp_path):
    config = server_config(mongodb_uri, database, server={"workers": 2})
    server = ServerProcess(config, tmp_path).start()
    try:
        server.wait_ready()
        workers = wait_for(lambda: len(_children(server.pid)) == 2 and _children(server.pid),
                           10, what="two workers")
        directory = Path(re.search(r"metrics of 2 workers gathered in (\S+)",
                                   server.log()).group(1))
        assert directory.stat().st_mode & 0o077 == 0  # private to this user
        with httpx.Client(base_url=server.url, timeout=10,
                          limits=httpx.Limits(max_keepalive_connections=0)) as client:
            tokens = [client.post("/login", json={"code": f"dev:w{n}"}).json()["session_id"]
                      for n in range(10)]

        def read(token: str) -> int:  # a new connection each
            return httpx.get(f"{server.url}/session", headers={"X-Session": token},
                             timeout=10).status_code

        # The kernel hands each new connection to whichever worker accepts it first; sent ten
        # at a time, they reach both, but a quiet worker may win them all for a while: send
        # batches until both have served some (at least 4 batches, at most 20).
        sent = 0
        with concurrent.futures.ThreadPoolExecutor(len(tokens)) as pool:
            for batch in range(20):
                assert list(pool.map(read, tokens)) == [200] * len(tokens)
                sent += len(tokens)
                if batch >= 3 and all(_requests_in(directory, pid) for pid in workers):
                    break
        # Counted as the access line is logged, a moment after the answer is sent.
        per_worker = wait_for(lambda: (counts := {pid: _requests_in(directory, pid)
                                                  for pid in workers})
                              and sum(counts.values()) == sent and counts, 5,
                              what=f"{sent} counted")
        assert all(per_worker.values()), per_worker  # both served, so both must be summed
        # Every scrape, whichever worker answers it, reports all of them.
        for _ in range(8):
            view = scrape(server.metrics_url)
            assert view.value("minisession_http_requests_total", route="/session",
                              status="200") == sent
            assert view.value("minisession_logins_total", outcome="new") == 10
            assert view.value("minisession_store_operation_duration_seconds_count",
                              operation="login") == 10
            assert not view.label_values() & set(tokens)
            assert "process_cpu_seconds" not in view.names()  # the multiprocess view

        # A worker that dies: its figures stay counted (totals never go down), the
        # replacement adds to them.
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(_children(server.pid)) == 2 and victim not in _children(server.pid),
                 10, what="a replacement worker")
        for _ in range(4):
            assert scrape(server.metrics_url).value(
                "minisession_http_requests_total", route="/session", status="200") == sent
    finally:
        server.stop()
    assert server.process.returncode == 0
    assert not directory.exists()  # removed when the server exits


def test_request_series_stay_bounded_whatever_methods_clients_send():
    # observe_request keeps each (route, method, status) series it has seen: a client's own
    # method names must all land in the one "other" series, not grow that memory.
    from server import metrics

    before = len(metrics._REQUEST_SERIES)
    for n in range(200):
        metrics.observe_request(f"X-METHOD-{n}", "/session", 405, 0.001)
    assert len(metrics._REQUEST_SERIES) <= before + 1
    sample = metrics.REGISTRY.get_sample_value(
        "minisession_http_requests_total",
        {"route": "/session", "method": "other", "status": "405"})
    assert sample is not None and sample >= 200
