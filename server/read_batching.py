"""Coalesce concurrent reads by key into one query per event-loop pass (the DataLoader idea).

Under load, many requests look up their session in the same pass of the event loop. Sending
them to MongoDB as one ``{_id: {$in: [...]}}`` query costs one driver round trip instead of
one each, and the driver's per-operation work (motor's thread hop, building the command,
checking a connection out and in) is most of what a MongoDB-backed request costs.

Freshness is the same as one query per request: a batch is sent only after every read in it
was asked for, so a read never answers from a query that started before it (a session revoked
before a request arrived is never served to that request). Concurrent reads of the same key in
one batch share its answer.
"""

import asyncio
from collections.abc import Awaitable, Callable, Hashable


class ReadBatcher:
    """Group ``get(key)`` calls made in one event-loop pass into ``fetch_many(keys)`` calls.

    ``fetch_many`` receives distinct keys (at most ``max_batch`` of them) and returns a mapping
    from key to value; a key it leaves out reads as ``None``. When it raises, every read of that
    batch raises the same exception.
    """

    def __init__(self, fetch_many: Callable[[list], Awaitable[dict]], max_batch: int = 100):
        self._fetch_many = fetch_many
        self._max_batch = max_batch
        self._pending: dict[Hashable, list[asyncio.Future]] = {}
        self._tasks: set[asyncio.Task] = set()  # strong references until each batch is done

    def get(self, key: Hashable) -> Awaitable:
        loop = asyncio.get_running_loop()
        if not self._pending:
            loop.call_soon(self._dispatch)
        waiter = loop.create_future()
        self._pending.setdefault(key, []).append(waiter)
        return waiter

    def _dispatch(self) -> None:
        pending, self._pending = self._pending, {}
        keys = list(pending)
        for start in range(0, len(keys), self._max_batch):
            chunk = keys[start:start + self._max_batch]
            task = asyncio.get_running_loop().create_task(
                self._run(chunk, [pending[key] for key in chunk]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, keys: list, waiters: list[list[asyncio.Future]]) -> None:
        try:
            found = await self._fetch_many(keys)
        except Exception as exc:  # noqa: BLE001  (handed to every reader, which raises it)
            for futures in waiters:
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        except BaseException:  # cancelled (the loop is closing): no reader may be left waiting
            for futures in waiters:
                for future in futures:
                    future.cancel()
            raise
        for key, futures in zip(keys, waiters, strict=True):
            value = found.get(key)
            for future in futures:
                if not future.done():  # its reader may have been cancelled meanwhile
                    future.set_result(value)
