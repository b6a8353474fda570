"""MongoDB session store, through motor or PyMongo's own ``AsyncMongoClient``.

This module is the only place in minisession that uses the MongoDB driver. ``store.driver``
picks it (:func:`mongodb_client`): ``"motor"`` (the default; deprecated upstream in favour of
``AsyncMongoClient``, critical fixes until 2027-05-14), which runs every operation in a thread
pool, or ``"pymongo"``, whose asyncio client does its I/O on the event loop itself. Both give
the same collection API (the same methods, cursors, errors), so the store is written once.

Collections:

- ``sessions``: ``{_id: storage key, app, openid, unionid, created_at, touched_at, expires_at,
  data, data_version, handle, generation, cookie_jars, cookie_jars_version}``; the storage key is a SHA-256 of the session id, so the
  collection holds no usable id, indexed on ``(app, openid)``, ``unionid``, ``user_id``, ``handle`` and on ``expires_at`` (a TTL
  index where the server has them, so MongoDB deletes expired sessions itself; FerretDB 1.x
  answers NotImplemented, and the server then purges periodically).
- ``users``: one document per identity: ``{_id: "<app>:<openid>", app, openid,
  session_key (sealed), session_key_id (its fingerprint), previous_session_key (sealed), session_key_replaced_at, phone (sealed),
  phone_verified_at, unionid, user_id, bound_at, login_at, recent_session_id, recent_sealed_id, recent_at, generation}``. The ``recent_*``
  fields make concurrent logins converge: the session is claimed with a compare-and-set on that
  single document, and ``recent_sealed_id`` (the raw id, AES-GCM sealed) lets later logins in
  the reuse window be handed the same id.
- ``unionid_bindings``: ``{_id: unionid, user_id, bound_at}``: a person bound across apps.
- ``revoked_handles``: ``{_id: handle, expires_at}``, an hour-long trace of each revoke by
  handle.
- ``locks``: only on servers whose updates are not atomic (below).
- ``app_tokens``: ``{_id: app, sealed_value, fingerprint, expires_at}``: each app's one
  access_token, sealed; ``token_leases``: ``{_id: app, holder, until}``: who may refresh it.
  A lease is taken by inserting its document (a unique ``_id`` is atomic on FerretDB too), so
  one process at a time refreshes; the token is written and expired only by the lease holder,
  which keeps FerretDB's non-atomic updates safe (see :mod:`server.access_tokens`).

Rotation moves a session to a new ``_id`` (delete, then insert), and a revoke running in between
would find nothing. So revokes leave a mark first and a rename looks for it after its insert,
deleting its own insert if it finds one: a revoke of all of a user's sessions bumps the user's
``generation`` (which each session copies when it is created), a revoke by handle records the
handle in ``revoked_handles``. Reads stay one query; only a rename pays the check.

Session reads that start in the same pass of the event loop are sent as one
``{_id: {$in: [...]}}`` query (``server/read_batching.py``, ``store.read_batching``), except on
FerretDB 1.x, which pushes only a plain ``{_id: <string>}`` filter down to its storage and
answers an ``$in`` by reading the whole collection.

Every update is field-level (``$set``/``$unset``/``$max`` on the fields concerned), so on
MongoDB a data write and a concurrent expiry slide never undo each other. FerretDB 1.x applies
an update as "read the document, change it, write it all back" with no check in between, so
two concurrent updates of one document can lose one of them (and a compare-and-set can succeed
twice). Its unique ``_id`` on insert *is* enforced atomically, so on FerretDB writes to one
document are serialized with lock documents (``server/stores/ferretdb_lock.py``). MongoDB
itself never takes these locks.

The driver client is built by :func:`mongodb_client` and passed in; the store closes it with
:meth:`MongoStore.close`.
"""

import asyncio
import contextlib
import functools
import inspect
import logging
import random
import re
from datetime import UTC, datetime

from pymongo import ReturnDocument
from pymongo.errors import (
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)

from server.errors import StoreUnavailable
from server.read_batching import ReadBatcher
from server.stores.ferretdb_lock import DocumentLocks
from server.stores.base import (
    Binding,
    DataTooLarge,
    LoginOutcome,
    SessionKeys,
    SessionRecord,
    Store,
    StoredAppToken,
    UserLogin,
    VerifiedPhone,
    canonical_user_id,
    data_size,
    user_key,
)

log = logging.getLogger("minisession.store")
# The driver's DEBUG logging writes whole commands and replies (session data, sealed values,
# storage keys): never on, whatever log.level the operator chose.
logging.getLogger("pymongo").setLevel(logging.INFO)

_NOT_IMPLEMENTED = 238  # MongoDB's error code for NotImplemented, as FerretDB answers TTL indexes
_CLAIM_ATTEMPTS = 5
_SYNC_ATTEMPTS = 5
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)")  # an integer's canonical decimal string
# How long a revoked handle is remembered: far longer than any rename can be under way.
_REVOKED_HANDLE_SECONDS = 3600


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _stored_user_id(user_id: str):
    """Filter matching ``user_id`` as stored now (a string) or by earlier versions (an integer:
    1001 for "1001"). FerretDB reads the whole collection for an $in: fine on admin paths."""
    if _DECIMAL.fullmatch(user_id) and -2**63 <= int(user_id) < 2**63:
        return {"$in": [user_id, int(user_id)]}
    return user_id


def _guard(method):
    """Turn driver failures into StoreUnavailable (503) without leaking driver details.

    Also opens the store on first use: a server that started while MongoDB was down serves
    as soon as MongoDB answers, with its indexes (and its FerretDB detection) in place first.
    """

    @functools.wraps(method)
    async def wrapper(self, *args, **kwargs):
        try:
            if not self.indexes_ready:
                await self._open()
            return await method(self, *args, **kwargs)
        except PyMongoError as exc:
            if isinstance(exc, ConnectionFailure) or exc.timeout:
                log.warning("MongoDB unreachable during %s: %s", method.__name__, type(exc).__name__)
            else:
                # The type and code only: the server's message may quote the document (data).
                log.error("MongoDB error during %s: %s (code %s)", method.__name__,
                          type(exc).__name__, getattr(exc, "code", None))
            raise StoreUnavailable() from None

    return wrapper


#: The values of ``store.driver``.
DRIVERS = ("motor", "pymongo")


def mongodb_client(uri: str, timeout: float, driver: str = "motor"):
    """The driver client a :class:`MongoStore` is given: the one place it is configured.

    ``driver``: ``"motor"`` (``AsyncIOMotorClient``) or ``"pymongo"`` (``AsyncMongoClient``).
    Every wait on MongoDB is bounded by the one configured timeout (CSOT), so a request never
    hangs on a dead server: it answers 503 store_unavailable instead. No I/O happens here.
    """
    timeout_ms = max(1, int(timeout * 1000))
    options = {"tz_aware": True, "appname": "minisession", "serverSelectionTimeoutMS": timeout_ms,
               "connectTimeoutMS": timeout_ms, "timeoutMS": timeout_ms}
    if driver == "pymongo":
        from pymongo import AsyncMongoClient

        return AsyncMongoClient(uri, **options)
    if driver == "motor":
        # Imported only when chosen: motor starts its thread pool on first use.
        from motor.motor_asyncio import AsyncIOMotorClient

        return AsyncIOMotorClient(uri, **options)
    raise ValueError(f"unknown MongoDB driver {driver!r}: one of {', '.join(DRIVERS)}")


class MongoStore(Store):
    """Sessions and users in MongoDB (or a compatible server such as FerretDB)."""

    def __init__(self, client, database: str, timeout: float,
                 read_batching: str = "auto"):
        """``client``: from :func:`mongodb_client`; ``timeout``: the same as its own."""
        self._client = client
        self._read_batching = read_batching
        #: Session reads of one event-loop pass, sent as one query (None: one query per read).
        self._reads: ReadBatcher | None = None
        self._database_name = database
        self._timeout_ms = max(1, int(timeout * 1000))
        db = client[database]
        self._sessions = db["sessions"]
        self._users = db["users"]
        self._revoked_handles = db["revoked_handles"]
        self._unionid_bindings = db["unionid_bindings"]
        self._locks = DocumentLocks(db["locks"], timeout)
        self._app_tokens = db["app_tokens"]
        self._token_leases = db["token_leases"]
        self.needs_purge = False
        self.indexes_ready = False
        #: False on servers that do not apply single-document updates atomically (FerretDB).
        self.atomic_updates = True

    @_guard
    async def open(self) -> None:
        """Connect and create the indexes (``_guard`` does it on first use of any method)."""

    async def _open(self) -> None:
        await self._ensure_indexes()

    async def _ensure_indexes(self) -> None:
        build = await self._client.admin.command("buildInfo")
        ferretdb = build.get("ferretdbVersion")
        self.atomic_updates = ferretdb is None
        if not self.atomic_updates:
            log.warning("this server (FerretDB %s) does not apply updates atomically: writes to "
                        "one session or user are serialized with lock documents", ferretdb)
        # FerretDB 1.x finds a document without a full scan only for a filter that is exactly
        # {_id: <string>}: an $in of several ids scans and decodes the whole collection.
        in_scans = ferretdb is not None and ferretdb.lstrip("v").startswith("1.")
        batch = {"on": True, "off": False}.get(self._read_batching, not in_scans)
        self._reads = ReadBatcher(self._find_sessions) if batch else None
        await self._sessions.create_index([("app", 1), ("openid", 1)])
        await self._sessions.create_index("unionid")
        await self._sessions.create_index("user_id")
        await self._users.create_index("unionid")
        await self._sessions.create_index("handle")
        try:
            for collection in (self._sessions, self._revoked_handles):
                await collection.create_index("expires_at", name="expires_at_ttl",
                                               expireAfterSeconds=0)
            self.needs_purge = False
        except OperationFailure as exc:
            if exc.code != _NOT_IMPLEMENTED:
                raise
            await self._sessions.create_index("expires_at")
            await self._revoked_handles.create_index("expires_at")
            self.needs_purge = True
            log.warning("this MongoDB server does not implement TTL indexes (FerretDB 1.x): "
                        "expired sessions are purged every store.purge_interval seconds instead")
        self.indexes_ready = True
        if await self._sessions.find_one({"app": {"$exists": False}}, {"_id": 1}) is not None \
                or await self._users.find_one({"app": {"$exists": False}}, {"_id": 1}):
            log.error("this database holds records of the version before apps: run "
                      "'minisession migrate --config <file>' once; until then their sessions "
                      "do not authenticate")

    @_guard
    async def drop(self) -> None:
        """Delete everything this store holds (test tear-down, decommissioning)."""
        await self._client.drop_database(self._database_name)
        self.indexes_ready = False

    async def close(self) -> None:
        closed = self._client.close()
        if inspect.isawaitable(closed):  # AsyncMongoClient's close is a coroutine, motor's not
            await closed
        self.indexes_ready = False

    @_guard
    async def ping(self) -> None:
        await self._client.admin.command("ping")

    @contextlib.asynccontextmanager
    async def _exclusive(self, key: str):
        """Hold the write lock of one document, on servers that need it (see module doc)."""
        if self.atomic_updates:
            yield
            return
        async with self._locks.hold(key):
            yield

    @staticmethod
    def _record(doc: dict) -> SessionRecord | None:
        if "app" not in doc:
            return None  # written before apps existed, not migrated yet: no identity to give
        return SessionRecord(
            id=doc["_id"], app=doc["app"], openid=doc["openid"], unionid=doc.get("unionid"),
            created_at=doc["created_at"].timestamp(), touched_at=doc["touched_at"].timestamp(),
            expires_at=doc["expires_at"].timestamp(), data=doc.get("data") or {},
            user_id=canonical_user_id(doc.get("user_id")), client_ip=doc.get("client_ip"),
            user_agent=doc.get("user_agent"),
            # Sessions stored before handles were kept across rotations: the key was the handle.
            handle=doc.get("handle", doc["_id"]),
            cookie_jars=doc.get("cookie_jars") or {},
        )

    @staticmethod
    def _document(record: SessionRecord, user: dict | None = None) -> dict:
        """A new session of ``user`` (its document as read), at its revocation generation.

        Fields without a value (no unionid, no binding...) are left out rather than stored as
        null: reads take a missing field as null, and FerretDB 1.x reads the whole document of
        every row it scans to find a session by ``_id``, so each stored byte costs on every
        request (bench/ferretdb_cost.py).
        """
        document = {
            "_id": record.id, "app": record.app, "openid": record.openid,
            "unionid": record.unionid,
            "created_at": _dt(record.created_at), "touched_at": _dt(record.touched_at),
            "expires_at": _dt(record.expires_at), "data": record.data,
            "user_id": record.user_id, "client_ip": record.client_ip,
            "user_agent": record.user_agent, "handle": record.handle,
            "generation": (user or {}).get("generation", 0),
        }
        return {name: value for name, value in document.items() if value is not None}

    async def _record_login(self, login: UserLogin, now: float) -> dict:
        fields = {"app": login.app, "openid": login.openid,
                  "session_key": login.sealed_session_key,
                  "session_key_id": login.session_key_id, "login_at": _dt(now)}
        if login.unionid is not None:
            fields["unionid"] = login.unionid
        key = user_key(login.app, login.openid)
        for _ in range(2):
            try:
                before = await self._users.find_one_and_update(
                    {"_id": key}, {"$set": fields}, upsert=True,
                    return_document=ReturnDocument.BEFORE,
                )
            except DuplicateKeyError:
                # Two first logins raced to insert the user; the loser now finds it and updates.
                continue
            await self._keep_previous_key(key, before, login.sealed_session_key,
                                          login.session_key_id, now)
            return {**(before or {"_id": key}), **fields}
        raise StoreUnavailable("the user record could not be written, try again")

    async def _keep_previous_key(self, key: str, before: dict | None, sealed: str | None,
                                 key_id: str | None, now: float) -> None:
        """After ``sealed`` was written as the newest session_key over ``before``: the key it
        replaced, if another key, becomes the previous one. Only while ``sealed`` is still the
        newest (each sealing is unique): of two racing writes, the later one's previous is
        the earlier's."""
        before = before or {}
        replaced = before.get("session_key")
        if sealed is None or replaced is None:
            if "previous_session_key" not in before:
                return
            update = {"$unset": {"previous_session_key": "", "session_key_replaced_at": ""}}
        elif replaced == sealed or (key_id is not None and before.get("session_key_id") == key_id):
            return  # the same key again (the platform often gives it while it is valid)
        else:
            update = {"$set": {"previous_session_key": replaced,
                               "session_key_replaced_at": _dt(now)}}
        await self._users.update_one({"_id": key, "session_key": sealed}, update)

    @_guard
    async def login(self, login: UserLogin, candidate: SessionRecord, reuse_since: float | None,
                    now: float) -> LoginOutcome:
        async with self._exclusive("user:" + user_key(login.app, login.openid)):
            outcome = await self._login(login, candidate, reuse_since, now)
        if not outcome.reused and self.atomic_updates:
            # A bind may have run between reading the user and inserting the session (on
            # FerretDB the user lock keeps binds out instead).
            await self._sync_binding(login.app, login.openid, seen=outcome.record.user_id)
        return outcome

    async def _login(self, login: UserLogin, candidate: SessionRecord,
                     reuse_since: float | None, now: float) -> LoginOutcome:
        user = await self._record_login(login, now)
        key = user["_id"]
        candidate.user_id = canonical_user_id(user.get("user_id"))
        claim = {"recent_session_id": candidate.id, "recent_sealed_id": login.sealed_session_id,
                 "recent_at": _dt(now)}
        mine = LoginOutcome(candidate, False, login.sealed_session_id)
        if reuse_since is None:
            await self._sessions.insert_one(self._document(candidate, user))
            await self._users.update_one({"_id": key}, {"$set": claim})
            return mine

        inserted = False
        for _ in range(_CLAIM_ATTEMPTS):
            recent_id = user.get("recent_session_id")
            recent_at = user.get("recent_at")
            if recent_id and recent_at is not None and recent_at.timestamp() >= reuse_since:
                recent = await self._sessions.find_one({"_id": recent_id})
                if recent is not None and "app" in recent \
                        and recent["expires_at"].timestamp() > now:
                    if inserted:
                        await self._sessions.delete_one({"_id": candidate.id})
                    return LoginOutcome(self._record(recent), True,
                                        user.get("recent_sealed_id", ""))
            # Insert before claiming, so whoever reads the claim finds the session in place.
            if not inserted:
                await self._sessions.insert_one(self._document(candidate, user))
                inserted = True
            claimed = await self._users.update_one(
                {"_id": key, "recent_session_id": recent_id}, {"$set": claim})
            if claimed.matched_count == 1:
                return mine
            # Someone else claimed first: read their claim and reuse it.
            user = await self._users.find_one({"_id": key}) or {}
        await self._sessions.delete_one({"_id": candidate.id})
        raise StoreUnavailable("too many concurrent logins for this user, try again")

    @_guard
    async def get(self, session_id: str) -> SessionRecord | None:
        if self._reads is not None:
            doc = await self._reads.get(session_id)
        else:
            doc = await self._sessions.find_one({"_id": session_id})
        return self._record(doc) if doc is not None else None

    async def _find_sessions(self, keys: list[str]) -> dict[str, dict]:
        if len(keys) == 1:
            doc = await self._sessions.find_one({"_id": keys[0]})
            return {keys[0]: doc} if doc is not None else {}
        return {doc["_id"]: doc async for doc in self._sessions.find({"_id": {"$in": keys}})}

    @_guard
    async def touch(self, session_id: str, touched_at: float, expires_at: float) -> None:
        # $max: a slow request can never move the expiry backwards past a newer slide.
        async with self._exclusive(session_id):
            await self._sessions.update_one(
                {"_id": session_id},
                {"$max": {"touched_at": _dt(touched_at), "expires_at": _dt(expires_at)}},
            )

    @_guard
    async def delete(self, session_id: str) -> bool:
        return (await self._sessions.delete_one({"_id": session_id})).deleted_count == 1

    @_guard
    async def replace_data(self, session_id: str, data: dict) -> bool:
        async with self._exclusive(session_id):
            # The version tells a merge that read the data before this that it changed.
            result = await self._sessions.update_one(
                {"_id": session_id}, {"$set": {"data": data}, "$inc": {"data_version": 1}})
        return result.matched_count == 1

    @_guard
    async def update_data(self, session_id: str, set_fields: dict, unset_fields: list[str],
                          max_bytes: int | None = None) -> bool:
        update = {}
        if set_fields:
            update["$set"] = {f"data.{key}": value for key, value in set_fields.items()}
        if unset_fields:
            update["$unset"] = {f"data.{key}": "" for key in unset_fields}
        if not update:
            return await self._sessions.find_one({"_id": session_id}, {"_id": 1}) is not None
        async with self._exclusive(session_id):
            if max_bytes is not None:
                return await self._update_within(session_id, update, "data", "data_version",
                                                 set_fields, unset_fields, max_bytes)
            result = await self._sessions.update_one({"_id": session_id}, update)
        return result.matched_count == 1

    @_guard
    async def update_cookie_jar(self, session_id: str, jar: str, set_cookies: dict,
                                unset_cookies: list[str], max_bytes: int | None = None) -> bool:
        field = f"cookie_jars.{jar}"
        update = {}
        if set_cookies:
            update["$set"] = {f"{field}.{key}": cookie for key, cookie in set_cookies.items()}
        if unset_cookies:
            update["$unset"] = {f"{field}.{key}": "" for key in unset_cookies}
        if not update:
            return await self._sessions.find_one({"_id": session_id}, {"_id": 1}) is not None
        async with self._exclusive(session_id):
            if max_bytes is not None:
                return await self._update_within(session_id, update, field,
                                                 "cookie_jars_version", set_cookies,
                                                 unset_cookies, max_bytes)
            result = await self._sessions.update_one({"_id": session_id}, update)
        return result.matched_count == 1

    async def _update_within(self, session_id: str, update: dict, field: str, version: str,
                             set_fields: dict, unset_fields: list[str], max_bytes: int) -> bool:
        """``update`` if the stored object at ``field`` (a dotted path: the data, or one
        cookie jar), so updated, stays within ``max_bytes``.

        Judged on the object as read just before the write, which must still be there when
        it lands: a compare-and-set on the ``version`` field (every write of that object
        increments it), retried on MongoDB when another write came in between. On FerretDB
        the caller holds the session's write lock, so the first attempt always lands.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_ms / 1000
        pause = 0.001
        while True:
            doc = await self._sessions.find_one({"_id": session_id}, {field: 1, version: 1})
            if doc is None:
                return False
            stored = doc
            for name in field.split("."):
                stored = (stored or {}).get(name)
            merged = (stored or {}) | set_fields
            for key in unset_fields:
                merged.pop(key, None)
            if (size := data_size(merged)) > max_bytes:
                raise DataTooLarge(size)
            # {version: None} also matches documents written before the field existed.
            result = await self._sessions.update_one(
                {"_id": session_id, version: doc.get(version)},
                update | {"$inc": {version: 1}})
            if result.matched_count == 1:
                return True
            if loop.time() > deadline:
                raise StoreUnavailable("the session's data is changing too fast, try again")
            await asyncio.sleep(pause * (0.5 + random.random()))
            pause = min(pause * 2, 0.05)

    @_guard
    async def session_key(self, app: str, openid: str) -> str | None:
        doc = await self._users.find_one({"_id": user_key(app, openid)}, {"session_key": 1})
        return doc.get("session_key") if doc else None

    @_guard
    async def session_keys(self, app: str, openid: str) -> SessionKeys | None:
        doc = await self._users.find_one(
            {"_id": user_key(app, openid)},
            {"session_key": 1, "previous_session_key": 1, "session_key_replaced_at": 1})
        if doc is None:
            return None
        replaced_at = doc.get("session_key_replaced_at")
        return SessionKeys(doc.get("session_key"), doc.get("previous_session_key"),
                           replaced_at.timestamp() if replaced_at else None)

    @_guard
    async def replace_session_key(self, app: str, openid: str, sealed_session_key: str,
                                  now: float, session_key_id: str | None = None) -> bool:
        key = user_key(app, openid)
        async with self._exclusive("user:" + key):
            before = await self._users.find_one_and_update(
                {"_id": key}, {"$set": {"session_key": sealed_session_key,
                                        "session_key_id": session_key_id}},
                return_document=ReturnDocument.BEFORE)
            if before is None:
                return False
            await self._keep_previous_key(key, before, sealed_session_key, session_key_id, now)
        return True

    @_guard
    async def set_phone(self, app: str, openid: str, phone: VerifiedPhone) -> bool:
        async with self._exclusive("user:" + user_key(app, openid)):
            result = await self._users.update_one(
                {"_id": user_key(app, openid)},
                {"$set": {"phone": phone.sealed, "phone_verified_at": _dt(phone.verified_at)}})
        return result.matched_count == 1

    @_guard
    async def phone(self, app: str, openid: str) -> VerifiedPhone | None:
        doc = await self._users.find_one({"_id": user_key(app, openid)},
                                         {"phone": 1, "phone_verified_at": 1})
        if not doc or not doc.get("phone"):
            return None
        return VerifiedPhone(doc["phone"], doc["phone_verified_at"].timestamp())

    @_guard
    async def rename(self, session_id: str, new_id: str) -> SessionRecord | None:
        # Delete first: from here on the old id finds nothing (and no write through it can be
        # lost), then the same session goes in under its new id.
        async with self._exclusive(session_id):
            doc = await self._sessions.find_one_and_delete({"_id": session_id})
        if doc is None:
            return None
        doc["_id"] = new_id
        doc.setdefault("handle", session_id)
        await self._sessions.insert_one(doc)
        if await self._revoked_since_issued(doc):
            # A revoke ran while the session was between ids and could not see it.
            await self._sessions.delete_one({"_id": new_id})
            return None
        # A bind that ran while the session was between ids did not see it.
        doc["user_id"] = await self._sync_binding(doc["app"], doc["openid"],
                                                  seen=doc.get("user_id"))
        return self._record(doc)

    async def _revoked_since_issued(self, doc: dict) -> bool:
        user = await self._users.find_one({"_id": user_key(doc["app"], doc["openid"])},
                                          {"generation": 1})
        if (user or {}).get("generation", 0) != doc.get("generation", 0):
            return True
        return await self._revoked_handles.find_one({"_id": doc["handle"]}) is not None

    # -- bindings and revocation ---------------------------------------------------------------

    async def _bound_user_id(self, app: str, openid: str):
        user = await self._users.find_one({"_id": user_key(app, openid)}, {"user_id": 1})
        # Canonical, so sessions copied from an integer binding of earlier versions turn into
        # strings at the next sync.
        return canonical_user_id((user or {}).get("user_id"))

    async def _sync_binding(self, app: str, openid: str, seen=...):
        """Make every session of the identity carry the user's current ``user_id``; return it.

        The binding lives in the user's document and is copied into sessions so that reading a
        session stays one query. Whoever changes either side calls this afterwards; it repeats
        until the binding it read is still the binding after its writes, so concurrent binds,
        unbinds, logins and renames all end with every copy equal to the binding.
        ``seen``: the user_id the caller just wrote into a session, to skip work when current.
        """
        user_id = await self._bound_user_id(app, openid)
        for _ in range(_SYNC_ATTEMPTS):
            if seen is not ... and seen == user_id:
                return user_id
            stale = {"app": app, "openid": openid, "user_id": {"$ne": user_id}}
            if self.atomic_updates:
                await self._sessions.update_many(stale, {"$set": {"user_id": user_id}})
            else:
                async for doc in self._sessions.find(stale, {"_id": 1}):
                    async with self._exclusive(doc["_id"]):
                        await self._sessions.update_one({"_id": doc["_id"]},
                                                        {"$set": {"user_id": user_id}})
            seen, user_id = user_id, await self._bound_user_id(app, openid)
        raise StoreUnavailable("the binding is changing too fast, try again")

    async def _set_binding(self, app: str, openid: str, update: dict) -> dict | None:
        for _ in range(2):
            try:
                return await self._users.find_one_and_update(
                    {"_id": user_key(app, openid)}, update, upsert="$set" in update,
                    return_document=ReturnDocument.BEFORE)
            except DuplicateKeyError:
                continue  # raced another first write of this user; now it exists
        raise StoreUnavailable("the user record could not be written, try again")

    @_guard
    async def bind(self, app: str, openid: str, user_id, now: float) -> None:
        async with self._exclusive("user:" + user_key(app, openid)):
            await self._set_binding(app, openid, {"$set": {
                "app": app, "openid": openid, "user_id": user_id, "bound_at": _dt(now)}})
            await self._sync_binding(app, openid)

    @_guard
    async def unbind(self, app: str, openid: str) -> bool:
        async with self._exclusive("user:" + user_key(app, openid)):
            before = await self._set_binding(app, openid,
                                             {"$unset": {"user_id": "", "bound_at": ""}})
            await self._sync_binding(app, openid)
        return before is not None and before.get("user_id") is not None

    @_guard
    async def binding(self, app: str, openid: str) -> Binding | None:
        user = await self._users.find_one({"_id": user_key(app, openid)},
                                          {"user_id": 1, "bound_at": 1})
        if not user or user.get("user_id") is None:
            return None
        return Binding(canonical_user_id(user["user_id"]), user["bound_at"].timestamp())

    @_guard
    async def identities_with_unionid(self, unionid: str) -> list[tuple[str, str]]:
        cursor = self._users.find({"unionid": unionid}, {"app": 1, "openid": 1})
        return [(doc["app"], doc["openid"]) async for doc in cursor]

    @_guard
    async def bind_unionid(self, unionid: str, user_id: str, now: float) -> None:
        # One document, one replace: atomic on FerretDB too.
        await self._unionid_bindings.replace_one(
            {"_id": unionid}, {"user_id": user_id, "bound_at": _dt(now)}, upsert=True)

    @_guard
    async def unbind_unionid(self, unionid: str) -> bool:
        return (await self._unionid_bindings.delete_one({"_id": unionid})).deleted_count == 1

    @_guard
    async def unionid_binding(self, unionid: str) -> Binding | None:
        doc = await self._unionid_bindings.find_one({"_id": unionid})
        if doc is None:
            return None
        return Binding(canonical_user_id(doc["user_id"]), doc["bound_at"].timestamp())

    @staticmethod
    def _owner_filter(app, openid, user_id, unionid) -> dict:
        if openid is None and user_id is None and unionid is None:
            raise ValueError("an openid, user_id or unionid is required")  # never "every session"
        if openid is not None and app is None:
            raise ValueError("an openid names an identity only with its app")
        query = {}
        for name, value in (("app", app), ("openid", openid), ("unionid", unionid)):
            if value is not None:
                query[name] = value
        if user_id is not None:
            query["user_id"] = _stored_user_id(user_id)
        return query

    @_guard
    async def list_sessions(self, now: float, app=None, openid=None, user_id=None, unionid=None,
                            limit: int = 1000) -> list[SessionRecord]:
        query = self._owner_filter(app, openid, user_id, unionid) | {"expires_at": {"$gt": _dt(now)}}
        cursor = self._sessions.find(query).sort("created_at", 1).limit(limit)
        return [record async for doc in cursor if (record := self._record(doc)) is not None]

    @_guard
    async def delete_sessions(self, app=None, openid=None, user_id=None, unionid=None) -> int:
        query = self._owner_filter(app, openid, user_id, unionid)
        # The mark first, so a rename that the delete misses finds it (see the module doc).
        if openid is not None:
            owners = {user_key(app, openid)}
        else:
            owners = {doc["_id"] async for doc in self._users.find(query, {"_id": 1})}
            # Owners of sessions whose copy of the binding is stale, too. (Not distinct():
            # FerretDB refuses it with a time limit.)
            stale = self._sessions.find(query, {"app": 1, "openid": 1})
            owners.update([user_key(doc["app"], doc["openid"]) async for doc in stale])
        for owner in owners:
            async with self._exclusive("user:" + owner):
                await self._users.update_one({"_id": owner}, {"$inc": {"generation": 1}})
        result = await self._sessions.delete_many(query)
        return result.deleted_count

    @_guard
    async def revoke_handle(self, handle: str, now: float) -> bool:
        # The mark first, so a rename that the delete misses finds it (see the module doc).
        try:
            await self._revoked_handles.update_one(
                {"_id": handle}, {"$set": {"expires_at": _dt(now + _REVOKED_HANDLE_SECONDS)}},
                upsert=True)
        except DuplicateKeyError:
            pass  # a concurrent revoke of the same handle made the mark
        result = await self._sessions.delete_many({"$or": [{"handle": handle}, {"_id": handle}]})
        return result.deleted_count > 0

    # -- access_tokens ----------------------------------------------------------------------

    @_guard
    async def app_token(self, app: str) -> StoredAppToken | None:
        doc = await self._app_tokens.find_one({"_id": app})
        if doc is None:
            return None
        return StoredAppToken(doc["sealed_value"], doc["fingerprint"],
                              doc["expires_at"].timestamp())

    @_guard
    async def take_token_lease(self, app: str, holder: str, now: float,
                               lease_time: float) -> bool:
        for _ in range(2):
            try:
                await self._token_leases.insert_one(
                    {"_id": app, "holder": holder, "until": _dt(now + lease_time)})
                return True
            except DuplicateKeyError:
                held = await self._token_leases.find_one({"_id": app})
                if held is None:
                    continue  # released meanwhile
                if held["holder"] == holder:
                    return True
                if held["until"] > _dt(now):
                    return False
                # Its holder died (or stalled) holding it: break that very lease, then retry.
                await self._token_leases.delete_one({"_id": app, "holder": held["holder"]})
        return False

    @_guard
    async def release_token_lease(self, app: str, holder: str) -> None:
        await self._token_leases.delete_one({"_id": app, "holder": holder})

    @_guard
    async def save_app_token(self, app: str, token: StoredAppToken, holder: str,
                             now: float) -> bool:
        held = await self._token_leases.find_one(
            {"_id": app, "holder": holder, "until": {"$gt": _dt(now)}}, {"_id": 1})
        if held is None:
            return False
        document = {"sealed_value": token.sealed_value, "fingerprint": token.fingerprint,
                    "expires_at": _dt(token.expires_at)}
        for _ in range(2):
            try:
                await self._app_tokens.replace_one({"_id": app}, document, upsert=True)
                return True
            except DuplicateKeyError:
                continue  # raced another first write of this app's token; now it exists
        raise StoreUnavailable("the access_token could not be written, try again")

    @_guard
    async def expire_app_token(self, app: str, fingerprint: str) -> bool:
        result = await self._app_tokens.update_one(
            {"_id": app, "fingerprint": fingerprint}, {"$set": {"expires_at": _dt(0)}})
        return result.matched_count == 1

    # -- upgrade -------------------------------------------------------------------------------

    @_guard
    async def migrate_legacy(self, app: str, reseal) -> tuple[int, int]:
        """Give the records written before apps existed to ``app``; (users, sessions) moved.

        A user's document moves from ``_id: openid`` to ``_id: "<app>:<openid>"``, its sealed
        values resealed for their new associated data by ``reseal(purpose, openid, sealed)``
        (None: it no longer opens, and is dropped). Safe to run again, and while servers run.
        """
        # Sessions first: a migrated user's recent session is then never one without an app.
        result = await self._sessions.update_many({"app": {"$exists": False}},
                                                  {"$set": {"app": app}})
        users = 0
        async for doc in self._users.find({"app": {"$exists": False}}):
            await self._adopt_user(app, doc, reseal)
            users += 1
        return users, result.modified_count

    async def _adopt_user(self, app: str, doc: dict, reseal) -> None:
        openid = doc.pop("_id")
        key = user_key(app, openid)
        for name, purpose in (("session_key", "session_key"), ("recent_sealed_id", "session_id")):
            if name in doc:
                doc[name] = reseal(purpose, openid, doc[name])
                if doc[name] is None:
                    del doc[name]
        if "recent_sealed_id" not in doc:
            for name in ("recent_session_id", "recent_at"):
                doc.pop(name, None)  # a recent session that cannot be handed out again
        async with self._exclusive("user:" + key):
            try:
                await self._users.insert_one({"_id": key, "app": app, "openid": openid, **doc})
            except DuplicateKeyError:
                # The identity logged in since the upgrade: its new record stays, and takes
                # the old binding if it has none.
                if doc.get("user_id") is not None:
                    await self._users.update_one(
                        {"_id": key, "user_id": None},
                        {"$set": {"user_id": doc["user_id"], "bound_at": doc.get("bound_at")}})
            await self._users.delete_one({"_id": openid, "app": {"$exists": False}})

    @_guard
    async def purge_expired(self, now: float) -> int:
        await self._revoked_handles.delete_many({"expires_at": {"$lte": _dt(now)}})
        result = await self._sessions.delete_many({"expires_at": {"$lte": _dt(now)}})
        return result.deleted_count
