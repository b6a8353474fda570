"""Store round trips of one authenticated request, counted by a pymongo command listener.

One minisession runs in this process on the MongoDB store, with a fake clock so that the
``touch_after`` window can be left without waiting. Every command the driver sends is seen by
a ``pymongo.monitoring.CommandListener`` (registered globally before the store's client is
created, so the store needs no hook), and counted per HTTP request:

    python -m bench.roundtrips mongodb://127.0.0.1:27017/ bench_roundtrips

prints one JSON object: for each step, the commands sent (``"find sessions"``...) and how many
were reads and writes.
"""

import asyncio
import json
import sys
from collections import Counter

from pymongo import monitoring
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

READS = {"find", "aggregate", "count", "distinct", "getMore"}
WRITES = {"insert", "update", "delete", "findAndModify"}


class CommandCounter(monitoring.CommandListener):
    def __init__(self):
        self.commands: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        collection = event.command.get(event.command_name)
        where = f" {collection}" if isinstance(collection, str) else ""
        self.commands.append(event.command_name + where)

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass

    def take(self) -> dict:
        """What was sent since the last call: commands by name, reads, writes."""
        names = [command.split()[0] for command in self.commands]
        taken = {
            "commands": dict(Counter(self.commands)),
            "reads": sum(name in READS for name in names),
            "writes": sum(name in WRITES for name in names),
        }
        self.commands = []
        return taken


async def measure(mongodb_uri: str, database: str) -> dict:
    # Imported after the listener is registered, which must precede every client.
    from server.app import Minisession
    from server.clock import FakeClock
    from server.config import parse_config
    from server.sealing import new_key

    config = parse_config({
        "session": {"secrets": ["bench-roundtrips-secret-0123456789abcdef"]},
        "store": {"backend": "mongodb", "mongodb_uri": mongodb_uri, "database": database,
                  "encryption_keys": [new_key()]},
        "login": {"provider": "dev"},
    }, environ={}, source="<bench.roundtrips>")
    clock = FakeClock()
    app = Minisession(config, clock=clock)
    await app.start()
    sockets = bind_sockets(0, address="127.0.0.1")
    http = HTTPServer(app.application)
    http.add_sockets(sockets)
    url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    client = AsyncHTTPClient()
    steps = {}
    try:
        COUNTER.take()  # start-up (indexes, server detection) is not a request

        async def step(name: str, method: str, path: str, **kwargs) -> None:
            answer = await client.fetch(url + path, method=method, raise_error=False, **kwargs)
            steps[name] = {"status": answer.code, **COUNTER.take()}
            if answer.code != 200:
                raise RuntimeError(f"{name}: {method} {path} answered {answer.code}")
            return answer

        login = await step("login (new user)", "POST", "/login", body='{"code":"dev:alice"}')
        cookie = {"Cookie": "sessionid=" + json.loads(login.body)["session_id"]}
        await step("GET /session, inside touch_after", "GET", "/session", headers=cookie)
        await step("GET /session, inside touch_after (again)", "GET", "/session",
                   headers=cookie)
        clock.advance(config.session.touch_after)
        await step("GET /session, touch_after passed", "GET", "/session", headers=cookie)
        await step("GET /session, right after that", "GET", "/session", headers=cookie)
    finally:
        client.close()
        http.stop()
        await app.store.drop()
        await app.stop()
    return {"atomic_updates": getattr(app.store, "atomic_updates", None), "steps": steps}


COUNTER = CommandCounter()


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    monitoring.register(COUNTER)
    print(json.dumps(asyncio.run(measure(sys.argv[1], sys.argv[2]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
