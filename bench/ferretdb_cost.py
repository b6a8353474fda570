"""FerretDB's CPU per session lookup, by document shape and query shape.

The benchmark showed FerretDB spending about twice the CPU per minisession ``GET /session``
that it spends per express-session + connect-mongo one, on the same number of sessions. This
helper takes the parts apart, on a FerretDB of its own with 100 sessions of each shape:

- documents as minisession writes them (and as it wrote them before it left out fields
  without a value), and as connect-mongo writes them (``_id``, ``expires``, ``session``: a
  JSON string);
- the query each sends: minisession ``{_id: key}``, connect-mongo ``{_id: sid, $or:
  [{expires: {$exists: false}}, {expires: {$gt: now}}]}``.

For each it times ``--lookups`` ``find_one`` calls and reads the FerretDB process's CPU time
from ``/proc``, and prints ms per lookup with the average stored row size (FerretDB's JSON,
from its SQLite file). The rounds alternate, so that the machine's load falls on all alike.

    python -m bench.ferretdb_cost [--lookups 2000] [--rounds 3]
"""

import argparse
import contextlib
import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pymongo import MongoClient

from bench.procs import cpu_seconds
from devtools.ferretdb import FerretDB, ensure_binary
from server.ids import storage_key
from server.stores.base import SessionRecord
from server.stores.mongodb import MongoStore

SESSIONS = 100
#: A mini-program's User-Agent (WeChat on iOS), as a real login stores it.
USER_AGENT = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
              "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323a) "
              "NetType/WIFI Language/zh_CN")


def documents(now: float) -> dict[str, list[dict]]:
    shapes: dict[str, list[dict]] = {"minisession": [], "minisession, nulls kept": [],
                                     "connect-mongo": []}
    for n in range(SESSIONS):
        record = SessionRecord(
            id=storage_key(uuid.uuid4().hex), app="default", openid=f"o{n:027d}",
            unionid=None, created_at=now, touched_at=now, expires_at=now + 7200,
            client_ip="203.0.113.7", user_agent=USER_AGENT)
        written = MongoStore._document(record)
        shapes["minisession"].append(written)
        shapes["minisession, nulls kept"].append(
            {"unionid": None, "user_id": None} | written)
        session = {"cookie": {"originalMaxAge": 7_200_000, "expires": "2026-01-01T02:00:00.000Z",
                              "httpOnly": True, "path": "/", "sameSite": "lax"},
                   "openid": f"s{n}", "createdAt": int(now * 1000)}
        shapes["connect-mongo"].append({
            "_id": uuid.uuid4().hex, "expires": datetime.fromtimestamp(now + 7200, UTC),
            "session": json.dumps(session, separators=(",", ":")), "lastModified":
            datetime.fromtimestamp(now, UTC)})
    return shapes


def minisession_query(key: str) -> dict:
    return {"_id": key}


def connect_mongo_query(key: str) -> dict:
    return {"_id": key, "$or": [{"expires": {"$exists": False}},
                                {"expires": {"$gt": datetime.now(UTC)}}]}


def row_bytes(ferretdb: FerretDB, database: str) -> dict[str, float]:
    """Average size of the stored rows (FerretDB's JSON) of each collection."""
    with contextlib.closing(sqlite3.connect(ferretdb.data_dir / f"{database}.sqlite")) as db:
        tables = db.execute("SELECT name, table_name FROM _ferretdb_collections").fetchall()
        return {name: db.execute(f'SELECT avg(length(_ferretdb_sjson)) FROM "{table}"')
                .fetchone()[0] for name, table in tables}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="minisession-ferretdb-cost-") as work:
        ferretdb = FerretDB(ensure_binary(), Path(work))
        ferretdb.start()
        try:
            client = MongoClient(ferretdb.uri, tz_aware=True)
            database = client["cost"]
            shapes = documents(time.time())
            for name, docs in shapes.items():
                database[name].insert_many(docs)
            cases = [(f"{name}, {label} query", name, query)
                     for name in shapes
                     for label, query in (("minisession's", minisession_query),
                                          ("connect-mongo's", connect_mongo_query))]
            costs: dict[str, list[float]] = {case: [] for case, _, _ in cases}
            for _ in range(args.rounds):
                for case, name, query in cases:
                    ids = [doc["_id"] for doc in shapes[name]]
                    before = cpu_seconds(ferretdb.process.pid)
                    for n in range(args.lookups):
                        assert database[name].find_one(query(ids[n % len(ids)])) is not None
                    used = cpu_seconds(ferretdb.process.pid) - before
                    costs[case].append(1000 * used / args.lookups)
            sizes = row_bytes(ferretdb, "cost")
            client.close()
        finally:
            ferretdb.stop()
    print(f"{SESSIONS} sessions per collection, {args.lookups} lookups x {args.rounds} rounds")
    print("| documents, query | stored row bytes | FerretDB CPU ms/lookup (median) | rounds |")
    print("|---|---:|---:|---|")
    for case, name, _ in cases:
        rounds = ", ".join(f"{c:.3f}" for c in costs[case])
        print(f"| {case} | {sizes[name]:.0f} | {statistics.median(costs[case]):.3f} | "
              f"{rounds} |")


if __name__ == "__main__":
    main()
