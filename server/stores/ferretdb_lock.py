"""Write locks on one document, for servers that do not apply updates atomically (FerretDB 1.x).

FerretDB 1.x applies an update as "read the document, change it, write it all back" with no
check in between, so two concurrent updates of one document can lose one of them. Its unique
``_id`` on insert *is* enforced atomically: a lock is the insert of ``{_id: key, owner, at}``
into the ``locks`` collection, released by deleting it (only by its owner).

A lock older than a few store timeouts belongs to a process that died holding it and is broken.
A release (or an acquisition's answer) lost with the connection is remembered and retried as
soon as the store answers again. Driver errors propagate (the store turns them into
StoreUnavailable); a lock not had within the timeout is StoreUnavailable("busy").
"""

import asyncio
import contextlib
import logging
import random
import uuid
from datetime import UTC, datetime, timedelta

from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError

from server.errors import StoreUnavailable

log = logging.getLogger("minisession.store")


class DocumentLocks:
    def __init__(self, collection, timeout: float):
        """``collection``: where lock documents go (motor); ``timeout``: the store's, seconds."""
        self._locks = collection
        self._timeout = timeout
        # A lock is held for a few round trips, each bounded by the timeout: one older than
        # this belongs to a process that died holding it, and may be broken.
        self._stale = timedelta(seconds=max(2.0, 4 * timeout))
        # Locks this process may still hold because their release (or their acquisition's
        # answer) was lost with the connection.
        self._unreleased: set[tuple[str, str]] = set()

    @contextlib.asynccontextmanager
    async def hold(self, key: str):
        """Hold the lock named ``key`` for the ``async with`` block."""
        if self._unreleased:
            await self._release_unreleased()
        owner = uuid.uuid4().hex
        await self._acquire(key, owner)
        try:
            yield
        except PyMongoError as exc:
            if isinstance(exc, ConnectionFailure) or exc.timeout:
                # The store is gone: a release now would only wait out another timeout before
                # the client hears of it. Released when the store answers again.
                self._unreleased.add((key, owner))
                raise
            await self._release(key, owner)
            raise
        except BaseException:
            await self._release(key, owner)
            raise
        else:
            await self._release(key, owner)

    async def _release(self, key: str, owner: str) -> None:
        try:
            await self._locks.delete_one({"_id": key, "owner": owner})
        except PyMongoError:
            self._unreleased.add((key, owner))
            log.warning("could not release a write lock; releasing it when the store is back")

    async def _acquire(self, key: str, owner: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        pause = 0.001
        while True:
            try:
                await self._locks.insert_one(
                    {"_id": key, "owner": owner, "at": datetime.now(UTC)})
                return
            except DuplicateKeyError:
                held = await self._locks.find_one({"_id": key})
                if held is not None and held["at"] < datetime.now(UTC) - self._stale:
                    await self._locks.delete_one({"_id": key, "owner": held["owner"]})
                    continue
                if loop.time() > deadline:
                    raise StoreUnavailable("the session is busy, try again") from None
                await asyncio.sleep(pause * (0.5 + random.random()))
                pause = min(pause * 2, 0.05)
            except PyMongoError:
                # The insert may have been applied before its answer was lost.
                self._unreleased.add((key, owner))
                raise

    async def _release_unreleased(self) -> None:
        for key, owner in list(self._unreleased):
            # Only ever our own lock: the owner is part of the filter.
            await self._locks.delete_one({"_id": key, "owner": owner})
            self._unreleased.discard((key, owner))
