"""minisession's benchmark: start everything on loopback, load it with wrk, print a table.

    python -m bench.run                       # every scenario, 10 s each (about 15 minutes)
    python -m bench.run --duration 2 --scenarios baseline,memory --json out.json

It starts what it needs itself, on 127.0.0.1 and free ports, in a temporary directory, and
stops it all at the end: FerretDB (devtools/ferretdb.py), the fake WeChat, one ``minisession
serve`` per scenario, the bare Tornado baseline, and the express-session peer (its packages
come from npm, into bench/peer/node_modules). wrk is installed from Debian's packages when
missing. Every wrk run is bounded by ``--duration`` seconds and by a count of answers.

The machine is shared and noisy, so scenarios compared with each other are measured side by
side: their servers run together and each round measures every one of them in turn
(``--rounds``, default 3); a row is the round with the median rate.

Scenarios (``--scenarios``, comma-separated, in this order):

- ``roundtrips``: MongoDB commands per request, inside and outside ``touch_after``;
- ``baseline``, ``memory``, ``peer-memory``, ``mongodb``, ``peer``, side by side: (1) a bare
  Tornado JSON handler, same process set-up, no access line, sent scenario 2's ``Cookie``
  header (which it ignores); ``baseline-uvloop`` (1u) the same
  on uvloop; (2) ``GET /session`` with a valid id, memory store, default configuration (its
  event loop "auto": uvloop where installed); (2p) the same request to express-session on its
  MemoryStore; (3) the same on the MongoDB store (FerretDB); ``pymongo`` (3p) scenario 3 with
  ``store.driver = "pymongo"``; ``batched``, ``batched-pymongo`` (3b, 3bp) scenarios 3 and
  3p with ``store.read_batching = "on"``; ``memory-asyncio``, ``mongodb-asyncio`` (2a, 3a)
  scenarios 2 and 3 with ``server.event_loop = "asyncio"``;
  (6) the same request to express-session + connect-mongo on the same FerretDB;
- ``login``: (4) ``POST /login`` through the fake WeChat, a fresh code and user each time;
- ``workers``: scenario 3 with ``[server] workers = 1`` and ``= 2``, side by side (skipped,
  with the reason, when the config refuses the key);
- ``size``: (5) scenario 3 with ``--sizes`` sessions preloaded (default 1,000 and 1,000,000),
  reading a sample of them and sessions logged in before and after the preload;
- ``rss``: the server's RSS after the first ``--rss-first`` requests and after
  ``--rss-requests`` (default 10,000 and 1,000,000).

``--profile`` adds runs of scenarios 2 and 3 under py-spy and prints where the time goes.
Exit status 0 when every scenario ran and no request got an error; the targets are reported,
not enforced.
"""

import argparse
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench import instructions, peer, profile, report, sessions
from bench.config import (
    WECHAT_APPID,
    WECHAT_SECRET,
    check_config,
    server_config,
    write_config,
)
from bench import procs
from bench.procs import Service, cpu_seconds, free_port, pin_running, python_module
from bench.report import Row
from bench.wrk import WrkResult, ensure_wrk, run_wrk
from devtools.ferretdb import FerretDB, ensure_binary

SCENARIOS = ["roundtrips", "baseline", "baseline-uvloop", "memory", "memory-asyncio",
             "peer-memory", "mongodb", "mongodb-asyncio", "pymongo", "batched",
             "batched-pymongo", "peer",
             "instructions",
             "login", "workers", "size", "rss"]
#: Answers per second no run here can reach: the cap that makes a time-bound run count-bound
#: too, without ever cutting it short.
SAFETY_RATE = 200_000
#: The databases a run writes to (``bench_<scenario>``); dropped on a ``--mongodb-uri`` server.
BENCH_DATABASES = "bench_"


@dataclass
class Target:
    """What one row measures: a server, the URL and the wrk script that loads it."""

    key: str
    label: str
    service: Service
    url: str
    script: str
    env: dict = field(default_factory=dict)
    #: Whether its requests reach MongoDB (whose CPU time is then reported beside the server's).
    uses_store: bool = True


class Bench:
    """One benchmark run: its options, shared services, and what it measured."""

    def __init__(self, args: argparse.Namespace, workdir: Path):
        self.args = args
        self.workdir = workdir
        self.rows: list[Row] = []
        self.facts: dict = {}
        self.failures: list[str] = []
        self.profiles: dict[str, dict] = {}
        #: When the first side-by-side load began (--gc-probe reports the passes from then on).
        self.loaded_since: float | None = None
        self._services: list[Service] = []
        self._ferretdb: FerretDB | None = None
        self._fake: Service | None = None
        self._external_cleared = False

    @property
    def store(self) -> str:
        """What serves the MongoDB scenarios, for the labels."""
        return "MongoDB server" if self.args.mongodb_uri else "FerretDB"

    # -- processes -------------------------------------------------------------------------

    def mongodb_uri(self) -> str:
        if self.args.mongodb_uri:
            if not self._external_cleared:
                # A store preloaded by an earlier, interrupted run would skew the sizes.
                sessions.drop_databases(self.args.mongodb_uri, BENCH_DATABASES)
                self._external_cleared = True
            return self.args.mongodb_uri
        if self._ferretdb is None:
            self._ferretdb = FerretDB(ensure_binary(), self.workdir / "ferretdb")
            self._ferretdb.start()
            pin_running(self._ferretdb.process.pid, "load")
        return self._ferretdb.uri

    def store_cpu_seconds(self) -> float | None:
        """CPU time used so far by the FerretDB this run started (None when there is none)."""
        if self._ferretdb is None or self._ferretdb.process is None:
            return None
        return cpu_seconds(self._ferretdb.process.pid)

    def add_ferretdb_id_index(self, database: str) -> str:
        """Give FerretDB's ``sessions`` table the index its ``_id`` lookups can use.

        FerretDB 1.24 (SQLite) finds ``{_id: <string>}`` with ``WHERE _ferretdb_sjson->'$._id'
        = ?`` but indexes ``_id`` as ``_ferretdb_sjson->"_id"``: SQLite matches an index only
        on the same expression, so every lookup scans the table. This adds the index on the
        expression the queries use, straight into FerretDB's SQLite file (FerretDB keeps its
        own index list elsewhere and never sees it; SQLite maintains it on every write).
        """
        path = self._ferretdb.data_dir / f"{database}.sqlite"
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
            (table,) = db.execute("SELECT table_name FROM _ferretdb_collections "
                                  "WHERE name = 'sessions'").fetchone()
            statement = (f'CREATE INDEX IF NOT EXISTS "{table}_id_lookup" ON "{table}" '
                         "(_ferretdb_sjson->'$._id')")
            db.execute(statement)
            db.commit()
        print(f"  added to FerretDB's SQLite file: {statement}", flush=True)
        return statement

    def wechat_url(self) -> str:
        if self._fake is None:
            port = free_port()
            self._fake = self.service("fake-wechat", python_module(
                "server.cli", "fake-platforms", "--port", str(port), "--appid", WECHAT_APPID,
                "--secret", WECHAT_SECRET),
                port, health="/fake/stats", role="load")
        return self._fake.url

    def service(self, name: str, command: list[str], port: int,
                health: str = "/healthz", timeout: float = 30.0, role: str = "servers") -> Service:
        service = Service(name, command, port, self.workdir, health=health, role=role)
        self._services.append(service)
        return service.start(timeout=timeout)

    def minisession(self, name: str, mongodb: bool, database: str | None = None,
                    store: dict | None = None, **server: object) -> Service:
        port = free_port()
        config = server_config(port, self.wechat_url(),
                               mongodb_uri=self.mongodb_uri() if mongodb else None,
                               database=database or f"bench_{name}",
                               log_level=self.args.log_level, store=store, **server)
        path = write_config(config, self.workdir / f"{name}.toml")
        return self.service(name, python_module("server.cli", "serve", "--config", str(path)),
                            port)

    def close(self) -> None:
        for service in reversed(self._services):
            service.stop()
        if self._ferretdb is not None:
            self._ferretdb.stop()  # its data goes with the work directory
        if self._external_cleared:
            sessions.drop_databases(self.args.mongodb_uri, BENCH_DATABASES)

    # -- measuring -------------------------------------------------------------------------

    def load(self, url: str, script: str, env: dict | None = None, duration: float | None = None,
             max_requests: int | None = None) -> WrkResult:
        duration = self.args.duration if duration is None else duration
        return run_wrk(url, script, duration=duration, connections=self.args.connections,
                       threads=self.args.threads,
                       max_requests=max_requests or int(SAFETY_RATE * max(duration, 1)),
                       env=env, workdir=self.workdir)

    def side_by_side(self, targets: list[Target]) -> None:
        """Measure the targets in turn, ``--rounds`` times; a row each, its median round.

        The first round warms each target up first (pools fill; nothing is recorded).
        """
        runs: dict[str, list[tuple[WrkResult, float]]] = {t.key: [] for t in targets}
        self.loaded_since = self.loaded_since or time.time()  # servers up, sessions made
        for round_number in range(self.args.rounds):
            for target in targets:
                if round_number == 0 and self.args.warmup > 0:
                    self.load(target.url, target.script, target.env, duration=self.args.warmup)
                load_avg = os.getloadavg()[0]
                user_before, system_before = target.service.cpu_times()
                store_before = self.store_cpu_seconds() if target.uses_store else None
                result = self.load(target.url, target.script, target.env)
                if result.requests:
                    user_after, system_after = target.service.cpu_times()
                    result.system_cpu_ms = 1000 * (system_after - system_before) / result.requests
                    result.cpu_ms = result.system_cpu_ms + 1000 * (user_after - user_before) \
                        / result.requests
                    if store_before is not None:
                        result.store_cpu_ms = 1000 * (self.store_cpu_seconds() - store_before) \
                            / result.requests
                runs[target.key].append((result, load_avg))
                print(f"  {target.label}: {result.rate:,.0f} req/s, p50 {result.p50_ms:.1f} ms, "
                      f"p99 {result.p99_ms:.1f} ms, errors {result.error_count}, server CPU "
                      f"{result.cpu_ms:.3f} ms/request (system {result.system_cpu_ms:.3f})"
                      + ("" if result.store_cpu_ms is None
                         else f", FerretDB CPU {result.store_cpu_ms:.3f} ms/request")
                      + f" (load {load_avg:.2f})", flush=True)
                if result.error_count:
                    self.failures.append(
                        f"{target.label}: {result.error_count} errors {result.errors}, "
                        f"answers by status {result.statuses}")
        for target in targets:
            ordered = sorted(runs[target.key], key=lambda run: run[0].rate)
            result, load_avg = ordered[len(ordered) // 2]
            self.rows.append(Row(target.key, target.label, result, round(load_avg, 2),
                                 rounds=[round(r.rate) for r, _ in runs[target.key]]))

    def cookie_file(self, name: str, cookies: list[str]) -> dict:
        return {"BENCH_COOKIES": str(sessions.write_cookies(cookies,
                                                           self.workdir / f"{name}.cookies"))}

    def profiled(self, target: Target) -> None:
        """An extra run with py-spy sampling the server (not in the table: sampling costs)."""
        key, seconds = target.key, self.args.profile_seconds
        raw = self.workdir / f"profile-{key}.txt"
        sampler = profile.start(target.service.pids()[-1], seconds, raw)
        result = self.load(target.url, target.script, target.env, duration=seconds)
        _, problems = sampler.communicate(timeout=seconds + 60)
        if sampler.returncode != 0 or not raw.exists():
            self.failures.append(f"py-spy on {key} failed: {problems[-500:]}")
            return
        summary = profile.summarize(raw)
        summary["rate_while_sampled"] = round(result.rate, 1)
        self.profiles[key] = summary
        print(profile.format_summary(f"profile of {key} ({result.rate:,.0f} req/s while "
                                     f"sampled)", summary), flush=True)


# -- scenarios ------------------------------------------------------------------------------

def scenario_roundtrips(bench: Bench) -> None:
    database = f"bench_roundtrips_{uuid.uuid4().hex[:8]}"
    done = subprocess.run(python_module("bench.roundtrips", bench.mongodb_uri(), database),
                          capture_output=True, text=True, timeout=120, check=False,
                          cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise RuntimeError(f"bench.roundtrips failed:\n{done.stderr[-3000:]}")
    trips = json.loads(done.stdout.strip().splitlines()[-1])
    bench.facts["roundtrips"] = trips
    for step, counted in trips["steps"].items():
        commands = ", ".join(f"{n} x {c}" for c, n in counted["commands"].items())
        print(f"  {step}: {counted['reads']} read(s), {counted['writes']} write(s) "
              f"[{commands}]", flush=True)


def _baseline_target(bench: Bench, key: str, label: str, event_loop: str) -> Target:
    port = free_port()
    service = bench.service(key, python_module(
        "bench.baseline", "--port", str(port), "--log-level", bench.args.log_level,
        "--event-loop", event_loop), port)
    # Sent the Cookie header scenario 2 gets, which it ignores (bench/sessions.py).
    return Target(key, label, service, service.url + "/session", "session.lua",
                  bench.cookie_file(key, sessions.unchecked_cookies(bench.args.sessions)),
                  uses_store=False)


def prepare_baseline(bench: Bench) -> Target:
    return _baseline_target(bench, "baseline", "1. bare Tornado JSON handler, no logging "
                            "(ceiling)", "asyncio")


def prepare_baseline_uvloop(bench: Bench) -> Target:
    return _baseline_target(bench, "baseline-uvloop", "1u. the same on uvloop", "uvloop")


def _session_target(bench: Bench, key: str, label: str, mongodb: bool,
                    database: str | None = None, store: dict | None = None,
                    **server: object) -> Target:
    service = bench.minisession(key, mongodb=mongodb, database=database, store=store, **server)
    cookies = sessions.login_minisession(service.url, bench.args.sessions)
    sessions.check_cookies(service.url, cookies)
    return Target(key, label, service, service.url + "/session", "session.lua",
                  bench.cookie_file(key, cookies), uses_store=mongodb)


def prepare_memory(bench: Bench) -> Target:
    return _session_target(bench, "memory", "2. GET /session, memory store", mongodb=False)


def prepare_mongodb(bench: Bench) -> Target:
    return _session_target(bench, "mongodb", f"3. GET /session, MongoDB store ({bench.store})",
                           mongodb=True)


def prepare_memory_asyncio(bench: Bench) -> Target:
    return _session_target(bench, "memory-asyncio", '2a. GET /session, memory store, '
                           'server.event_loop = "asyncio"', mongodb=False, event_loop="asyncio")


def prepare_mongodb_asyncio(bench: Bench) -> Target:
    return _session_target(bench, "mongodb-asyncio", f"3a. GET /session, MongoDB store "
                           f'({bench.store}), server.event_loop = "asyncio"', mongodb=True,
                           event_loop="asyncio")


def prepare_pymongo(bench: Bench) -> Target:
    return _session_target(bench, "pymongo", f"3p. GET /session, MongoDB store ({bench.store}), "
                           'store.driver = "pymongo"', mongodb=True, store={"driver": "pymongo"})


def prepare_batched(bench: Bench) -> Target:
    # What "auto" picks on MongoDB, forced on FerretDB 1.x (whose $in scans the collection):
    # the driver's cost per request with batched reads, measured beside scenario 3.
    return _session_target(bench, "batched", f"3b. GET /session, MongoDB store ({bench.store}), "
                           'store.read_batching = "on"', mongodb=True,
                           store={"read_batching": "on"})


def prepare_batched_pymongo(bench: Bench) -> Target:
    # The same with PyMongo's AsyncMongoClient (no thread hop per operation): beside 3p.
    return _session_target(bench, "batched-pymongo", f"3bp. GET /session, MongoDB store "
                           f'({bench.store}), store.driver = "pymongo", read_batching = "on"',
                           mongodb=True, store={"driver": "pymongo", "read_batching": "on"})


def _peer_target(bench: Bench, key: str, label: str, mongodb: bool) -> Target:
    node = peer.ensure_installed()
    bench.facts["peer_packages"] = peer.versions()
    port = free_port()
    uri = bench.mongodb_uri() if mongodb else None
    service = bench.service(key, peer.command(node, port, uri, "bench_peer"), port)
    cookies = sessions.login_peer(service.url, bench.args.sessions)
    sessions.check_cookies(service.url, cookies)
    return Target(key, label, service, service.url + "/session", "session.lua",
                  bench.cookie_file(key, cookies), uses_store=mongodb)


def prepare_peer_memory(bench: Bench) -> Target:
    return _peer_target(bench, "peer-memory", "2p. GET /session, express-session MemoryStore",
                        mongodb=False)


def prepare_peer(bench: Bench) -> Target:
    return _peer_target(bench, "peer", "6. GET /session, express-session + connect-mongo "
                        f"(same {bench.store})", mongodb=True)


SIDE_BY_SIDE = {"baseline": prepare_baseline, "baseline-uvloop": prepare_baseline_uvloop,
                "memory": prepare_memory, "memory-asyncio": prepare_memory_asyncio,
                "peer-memory": prepare_peer_memory,
                "mongodb": prepare_mongodb, "mongodb-asyncio": prepare_mongodb_asyncio,
                "pymongo": prepare_pymongo, "batched": prepare_batched,
                "batched-pymongo": prepare_batched_pymongo, "peer": prepare_peer}


def run_side_by_side(bench: Bench, names: list[str]) -> None:
    targets = []
    for name in names:
        print(f"[{name}] starting", flush=True)
        try:
            targets.append(SIDE_BY_SIDE[name](bench))
        except Exception as exc:  # noqa: BLE001  (the others still run)
            bench.failures.append(f"{name}: {type(exc).__name__}: {exc}")
            print(f"  FAILED: {type(exc).__name__}: {exc}", flush=True)
    if not targets:
        return
    print(f"[{', '.join(t.key for t in targets)}] side by side, {bench.args.rounds} round(s)",
          flush=True)
    bench.side_by_side(targets)
    if bench.args.profile:
        for target in targets:
            if target.key in ("memory", "memory-asyncio", "mongodb", "mongodb-asyncio",
                              "pymongo", "batched", "batched-pymongo"):
                bench.profiled(target)
    for target in targets:
        target.service.stop()


def scenario_instructions(bench: Bench) -> None:
    instructions.scenario(bench)


def scenario_login(bench: Bench) -> None:
    service = bench.minisession("login", mongodb=True)
    target = Target("login", "4. POST /login, fake WeChat, MongoDB store", service,
                    service.url + "/login", "login.lua", {"BENCH_RUN": uuid.uuid4().hex[:6]})
    bench.side_by_side([target])
    service.stop()


def scenario_workers(bench: Bench) -> None:
    probe = server_config(free_port(), "http://127.0.0.1:9", mongodb_uri="mongodb://127.0.0.1/",
                          workers=2)
    accepted, said = check_config(write_config(probe, bench.workdir / "workers-probe.toml"))
    if not accepted:
        reason = "this minisession refuses [server] workers: " + said.splitlines()[-1]
        bench.facts["workers_skipped"] = reason
        print(f"  skipped: {reason}", flush=True)
        return
    pinning = dict(procs.CPUS)
    procs.CPUS.update(servers=None, load=None)  # two workers need the CPUs --pin would hold
    try:
        targets = [_session_target(bench, f"workers-{n}", f"3. with workers = {n}",
                                   mongodb=True, database="bench_workers", workers=n)
                   for n in (1, 2)]
        for target in targets:
            bench.facts[f"{target.key}_processes"] = len(target.service.pids())
        bench.side_by_side(targets)
        for target in targets:
            target.service.stop()
    finally:
        procs.CPUS.update(pinning)


def scenario_size(bench: Bench) -> None:
    """Each size measured three ways, side by side: a sample of the preloaded sessions, and
    ``--sessions`` users logged in before the first preload (the start of the collection) and
    after this one (its end). FerretDB's SQLite scan stops early on a match near the start of
    its table, which the "before" row alone would hide."""
    database = "bench_size"
    service = bench.minisession("size", mongodb=True, database=database)
    uri, loaded, preloads = bench.mongodb_uri(), 0, []
    before = sessions.login_minisession(service.url, bench.args.sessions)
    for size in sorted(bench.args.sizes):
        cookies, seconds = sessions.preload(uri, database, size - loaded, bench.args.sample)
        preloads.append({"size": size, "added": size - loaded, "seconds": round(seconds, 1)})
        print(f"  preloaded {size - loaded:,} sessions in {seconds:.1f} s "
              f"({(size - loaded) / max(seconds, 1e-3):,.0f}/s), {size:,} in all", flush=True)
        if not loaded:
            # The harness's own check, at the smallest size: these ids must open sessions.
            sessions.check_cookies(service.url, cookies)
            if bench.args.ferretdb_id_index:
                bench.facts["ferretdb_id_index"] = bench.add_ferretdb_id_index(database)
        loaded = size
        after = sessions.login_minisession(service.url, bench.args.sessions)
        sessions.check_cookies(service.url, after)
        indexed = ", FerretDB + `_id` lookup index" if bench.args.ferretdb_id_index else ""
        targets = []
        for suffix, which, measured in (("", "preloaded sample", cookies),
                                        ("-before", "logged in before the preload", before),
                                        ("-after", "logged in after the preload", after)):
            key = f"size-{size}{suffix}"
            targets.append(Target(
                key, f"5. GET /session, MongoDB store, {size:,} sessions, {which}{indexed}",
                service, service.url + "/session", "session.lua",
                bench.cookie_file(key, measured)))
        bench.side_by_side(targets)
        costs = sessions.store_costs(uri, database, cookies[0])
        preloads[-1]["store_ms"] = costs
        print(f"  at {size:,} sessions, one MongoDB command takes: "
              + ", ".join(f"{name} {ms:,.1f} ms" for name, ms in costs.items()), flush=True)
    bench.facts["preload"] = preloads
    service.stop()


def scenario_rss(bench: Bench) -> None:
    args = bench.args
    service = bench.minisession("rss", mongodb=args.rss_backend == "mongodb")
    cookies = sessions.login_minisession(service.url, args.sessions)
    env = bench.cookie_file("rss", cookies)
    url, done, rate, samples = service.url + "/session", 0, 0.0, []
    deadline = time.monotonic() + args.rss_timeout
    for target in (args.rss_first, args.rss_requests):
        while done < target:
            if time.monotonic() > deadline:
                raise RuntimeError(f"RSS run: {done:,} requests after {args.rss_timeout} s")
            remaining = target - done
            # Size each wrk run to end near its cap: wrk waits out -d even once capped.
            seconds = min(30.0, max(1.0, remaining / rate * 1.1)) if rate else 2.0
            result = bench.load(url, "session.lua", env, duration=seconds,
                                max_requests=remaining)
            if result.error_count:
                bench.failures.append(f"RSS run: {result.error_count} errors {result.errors}")
            done += result.requests
            rate = max(rate, result.rate)
            samples.append((done, service.rss_kib()))
        print(f"  RSS after {done:,} requests: {samples[-1][1]:,} KiB", flush=True)
    first = next(s for s in samples if s[0] >= args.rss_first)
    bench.facts["rss"] = {"backend": args.rss_backend, "first_requests": first[0],
                          "first_kib": first[1], "last_requests": samples[-1][0],
                          "last_kib": samples[-1][1], "samples": samples}
    service.stop()


RUNNERS = {name: globals()[f"scenario_{name}"] for name in SCENARIOS
           if name not in SIDE_BY_SIDE}


# -- the command ------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run",
                                     description="minisession's benchmark (see bench/run.py).")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated, from: {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of each measured run (default 10)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of side-by-side runs; a row is the median (default 3)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of load before each measured run, not recorded (default 2)")
    parser.add_argument("--connections", type=int, default=32,
                        help="concurrent connections (default 32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--sessions", type=int, default=100,
                        help="sessions logged in and read in turn (default 100)")
    parser.add_argument("--sizes", default="1000,1000000",
                        help="store sizes for the size scenario (default 1000,1000000)")
    parser.add_argument("--ferretdb-id-index", action="store_true",
                        help="scenario 5 on FerretDB: first add the index its _id lookups can "
                             "use (FerretDB 1.24 indexes another expression, so every lookup "
                             "scans; see docs/performance.md)")
    parser.add_argument("--sample", type=int, default=10_000,
                        help="preloaded sessions read in the size scenario (default 10000)")
    parser.add_argument("--instruction-requests", type=int, default=2000,
                        help="requests counted by callgrind in the instructions scenario "
                             "(default 2000)")
    parser.add_argument("--instruction-warmup", type=int, default=300,
                        help="requests before counting starts (default 300)")
    parser.add_argument("--rss-first", type=int, default=10_000)
    parser.add_argument("--rss-requests", type=int, default=1_000_000)
    parser.add_argument("--rss-backend", choices=["memory", "mongodb"], default="memory")
    parser.add_argument("--rss-timeout", type=float, default=1800,
                        help="seconds the RSS run may take at most (default 1800)")
    parser.add_argument("--log-level", default="info",
                        help="log.level of the servers (default info, the config default)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile scenarios 2 and 3 with py-spy")
    parser.add_argument("--profile-seconds", type=float, default=15.0)
    parser.add_argument("--mongodb-uri",
                        help="a MongoDB server on this machine to use instead of starting "
                             "FerretDB (its databases named bench_* are written to, and "
                             "dropped before and after the run)")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=None,
                        help="run each measured server on one CPU and wrk, FerretDB and the fake "
                             "platform on the others, so that req/s are per core (default: on "
                             "with 2 or more CPUs; the workers scenario is never pinned)")
    parser.add_argument("--gc-probe", action="store_true",
                        help="time every garbage-collector pass in each minisession server and "
                             "report them (bench/gc_probe/)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (configs, logs, profiles)")
    args = parser.parse_args(argv)
    args.scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}; choose from "
                     f"{', '.join(SCENARIOS)}")
    args.sizes = [int(size.replace("_", "")) for size in args.sizes.split(",") if size]
    if args.mongodb_uri and not _on_loopback(args.mongodb_uri):
        parser.error("--mongodb-uri must name a server on this machine (127.0.0.1, ::1, "
                     "localhost): benchmark load goes to loopback only")
    if args.mongodb_uri and args.ferretdb_id_index:
        parser.error("--ferretdb-id-index applies to the FerretDB the harness starts, not to "
                     "a --mongodb-uri server")
    return args


def _on_loopback(uri: str) -> bool:
    hosts = uri.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    for host in hosts.split(","):
        # "[::1]:27017" or "127.0.0.1:27017" or "localhost"
        name = host[1:].split("]", 1)[0] if host.startswith("[") else host.split(":", 1)[0]
        if name != "localhost":
            try:
                if not ipaddress.ip_address(name).is_loopback:
                    return False
            except ValueError:
                return False
    return True


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt  # so that SIGTERM, too, stops every process this run started


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)
    ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="minisession-bench-"))
    cpus = sorted(os.sched_getaffinity(0))
    if args.pin is None:
        args.pin = len(cpus) >= 2
    if args.pin:
        if len(cpus) < 2:
            raise SystemExit("--pin needs at least 2 CPUs")
        procs.CPUS.update(servers={cpus[0]}, load=set(cpus[1:]))
    if args.gc_probe:
        (workdir / "gc").mkdir()
        os.environ["BENCH_GC_PROBE"] = str(workdir / "gc")
    bench = Bench(args, workdir)
    started = time.monotonic()
    print(f"minisession benchmark: {', '.join(args.scenarios)}; {args.duration:g} s runs, "
          f"{args.connections} connections; work directory {workdir}", flush=True)
    try:
        group = [name for name in SIDE_BY_SIDE if name in args.scenarios]
        for name in SCENARIOS:
            if name not in args.scenarios:
                continue
            if name in SIDE_BY_SIDE:
                if name == group[0]:  # the whole group runs where its first member is
                    run_side_by_side(bench, group)
                continue
            print(f"[{name}]", flush=True)
            try:
                RUNNERS[name](bench)
            # One broken scenario must not hide the others' figures.
            except Exception as exc:  # noqa: BLE001
                bench.failures.append(f"{name}: {type(exc).__name__}: {exc}")
                print(f"  FAILED: {type(exc).__name__}: {exc}", flush=True)
    finally:
        bench.close()
    if args.gc_probe:
        bench.facts["gc"] = gc_passes(workdir / "gc", bench.loaded_since)
    print_report(bench, time.monotonic() - started)
    if args.keep:
        print(f"work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if bench.failures else 0


def gc_passes(directory: Path, since: float | None) -> dict:
    """What bench/gc_probe recorded under load (from ``since``, the first side-by-side run),
    by server (its config file's name: the scenario) and generation."""
    found = {}
    for path in sorted(directory.glob("gc.*.json")):
        recorded = json.loads(path.read_text())
        configs = [Path(a).stem for a in recorded["argv"] if a.endswith(".toml")]
        if not configs:
            continue
        by_generation: dict[str, list[float]] = {}
        for generation, ms, when in recorded["passes"]:
            if since is None or when >= since:
                by_generation.setdefault(str(generation), []).append(ms)
        found[configs[0]] = {
            generation: {"passes": len(ms), "total_ms": round(sum(ms), 1),
                         "median_ms": round(sorted(ms)[len(ms) // 2], 3),
                         "max_ms": round(max(ms), 2)}
            for generation, ms in sorted(by_generation.items())}
    return found


def print_report(bench: Bench, seconds: float) -> None:
    found = report.targets(bench.rows, bench.facts)
    info = report.machine()
    print("\n## Machine\n")
    print(", ".join(f"{k} {v}" for k, v in info.items() if v is not None))
    print(f"\n## Results ({bench.args.duration:g} s per run, {bench.args.connections} "
          f"connections, wrk threads {bench.args.threads}; total {seconds:.0f} s)\n")
    print(report.table(bench.rows))
    if found:
        print("\n## Targets\n")
        print(report.format_targets(found))
    if passes := bench.facts.get("gc"):
        print("\n## Garbage collector passes under load (warm-ups and measured runs)\n")
        print("| server | generation | passes | total ms | median ms | longest ms |")
        print("|---|---:|---:|---:|---:|---:|")
        for server, generations in passes.items():
            for generation, p in generations.items():
                print(f"| {server} | {generation} | {p['passes']:,} | {p['total_ms']:,} | "
                      f"{p['median_ms']} | {p['max_ms']} |")
    if bench.failures:
        print("\n## Failures\n")
        print("\n".join(f"- {failure}" for failure in bench.failures))
    if bench.args.json:
        bench.args.json.write_text(json.dumps({
            "machine": info, "options": {k: (str(v) if isinstance(v, Path) else v)
                                         for k, v in vars(bench.args).items()},
            "rows": [row.as_dict() for row in bench.rows], "facts": bench.facts,
            "targets": [{"target": t, "measured": m, "met": ok} for t, m, ok in found],
            "profiles": bench.profiles, "failures": bench.failures,
            "seconds": round(seconds, 1)}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
