"""Sessions to benchmark with: logged in over HTTP, or preloaded straight into MongoDB.

What wrk sends is a file of whole ``Cookie`` header values, one a line: the id handed back by
a real login, as a mini-program would send it by hand.
"""

import random
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from pymongo import MongoClient

from bench.config import SECRET
from server.ids import SessionIdSigner, storage_key
from server.stores.base import SessionRecord
from server.stores.mongodb import MongoStore

PRELOAD_BATCH = 10_000
#: Seconds ahead of the preload's start the sampled sessions count as last used (see preload).
SAMPLE_AHEAD = 900


def login_minisession(url: str, count: int) -> list[str]:
    """``count`` users log in through the fake WeChat; their ``sessionid=<id>`` cookies."""
    tag = uuid.uuid4().hex[:8]
    cookies = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for n in range(count):
            answer = client.post("/login", json={"code": f"user:s{tag}n{n}:{n}"})
            answer.raise_for_status()
            cookies.append(f"sessionid={answer.json()['session_id']}")
    return cookies


def login_peer(url: str, count: int) -> list[str]:
    """``count`` users log in to the express-session peer; their signed ``connect.sid``."""
    tag = uuid.uuid4().hex[:8]
    cookies = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for n in range(count):
            answer = client.post("/login", params={"openid": f"s{tag}n{n}"})
            answer.raise_for_status()
            # Sent back exactly as Set-Cookie gave it (URL-encoded, "s%3A" prefix and all).
            name_value = answer.headers["set-cookie"].split(";", 1)[0]
            cookies.append(name_value)
            # Each login a new client: with the last session's cookie sent along,
            # express-session would put every user in that one session (one stored session
            # read by every request, where minisession's run reads ``count``).
            client.cookies.clear()
    return cookies


def check_cookies(url: str, cookies: list[str]) -> None:
    """Every cookie must open its session, a session of its own: a benchmark of 401s would
    measure nothing, and one of a single session would not read what it says it reads."""
    if len(set(cookies)) != len(cookies):
        raise RuntimeError(f"{len(cookies)} logins gave {len(set(cookies))} different sessions")
    with httpx.Client(base_url=url, timeout=30) as client:
        for cookie in cookies[:20]:
            answer = client.get("/session", headers={"Cookie": cookie})
            if answer.status_code != 200:
                raise RuntimeError(f"GET /session with a fresh cookie answered "
                                   f"{answer.status_code}: {answer.text[:200]}")


def unchecked_cookies(count: int) -> list[str]:
    """``count`` cookies of the memory scenario's form (``sessionid=<id>``, ids signed as
    minisession signs them), for the bare handler, which reads no cookie: the requests of
    scenario 1 are then byte for byte as long as scenario 2's (issue 17: "the same hand-sent
    cookie"), and Tornado parses the same header in both."""
    signer = SessionIdSigner([SECRET])
    return [f"sessionid={signer.new_token()[1]}" for _ in range(count)]


def write_cookies(cookies: list[str], path: Path) -> Path:
    path.write_text("\n".join(cookies) + "\n")
    return path


def preload(mongodb_uri: str, database: str, count: int, sample: int,
            idle_timeout: float = 7200) -> tuple[list[str], float]:
    """Insert ``count`` live sessions as the MongoDB store writes them, in batches.

    Returns cookies for a random ``sample`` of them and the seconds the inserts took.

    The sampled sessions are the ones the measured run reads, and must not need their expiry
    slid then (a write per session, which would measure touches, not reads). A large preload
    takes longer than ``touch_after``, and updating them afterwards is no way out: FerretDB
    1.24 on SQLite scans the whole collection for every update. So they are written as last
    used ``SAMPLE_AHEAD`` seconds from now: whatever the time the run starts within that
    margin, none of them is due for a touch.
    """
    signer = SessionIdSigner([SECRET])
    keep = set(random.sample(range(count), min(sample, count)))
    cookies = []
    now = time.time()
    client = MongoClient(mongodb_uri, tz_aware=True)
    try:
        sessions = client[database]["sessions"]
        started = time.monotonic()
        for first in range(0, count, PRELOAD_BATCH):
            batch = []
            for n in range(first, min(first + PRELOAD_BATCH, count)):
                raw, token = signer.new_token()
                touched = now + SAMPLE_AHEAD if n in keep else now
                record = SessionRecord(
                    id=storage_key(raw), app="default", openid=f"preloaded-{n}", unionid=None,
                    created_at=now, touched_at=touched, expires_at=touched + idle_timeout,
                    data={})
                # The store's own document shape, so the server reads exactly what it wrote.
                batch.append(MongoStore._document(record))
                if n in keep:
                    cookies.append(f"sessionid={token}")
            sessions.insert_many(batch, ordered=False)
        seconds = time.monotonic() - started
    finally:
        client.close()
    random.shuffle(cookies)
    return cookies, seconds


def drop_databases(mongodb_uri: str, prefix: str) -> None:
    """Drop every database whose name starts with ``prefix``."""
    client = MongoClient(mongodb_uri)
    try:
        for name in client.list_database_names():
            if name.startswith(prefix):
                client.drop_database(name)
    finally:
        client.close()


def store_costs(mongodb_uri: str, database: str, cookie: str) -> dict[str, float]:
    """Milliseconds the store's own MongoDB commands take at the collection's current size.

    ``find_one`` by ``_id`` (every authenticated request), ``find`` of 32 ids with ``$in``
    (one batch of ``store.read_batching``), ``delete_one`` by ``_id`` (a logout, an expired
    session) and one expired-session sweep (the query the server runs every
    ``purge_interval`` on FerretDB; here nothing has expired, so it deletes nothing).
    """
    key = storage_key(cookie.partition("=")[2].split(".", 1)[0])
    probe = {"_id": f"bench-probe-{uuid.uuid4().hex}", "openid": "probe",
             "expires_at": datetime.now(UTC)}
    costs = {}
    client = MongoClient(mongodb_uri, tz_aware=True, timeoutMS=600_000)
    try:
        sessions = client[database]["sessions"]
        sessions.insert_one(probe)
        for name, command in (
                ("find_one by _id", lambda: sessions.find_one({"_id": key})),
                ("find $in of 32 ids", lambda: list(sessions.find(
                    {"_id": {"$in": [key] + [f"bench-absent-{n}" for n in range(31)]}}))),
                ("delete_one by _id", lambda: sessions.delete_one({"_id": probe["_id"]})),
                ("purge sweep", lambda: sessions.delete_many(
                    {"expires_at": {"$lte": datetime.now(UTC)}}))):
            started = time.monotonic()
            command()
            costs[name] = round((time.monotonic() - started) * 1000, 1)
    finally:
        client.close()
    return costs
