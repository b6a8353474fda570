"""``minisession sessions list|revoke``, ``users show`` and ``purge``: the admin API's
operations for scripts and emergencies.

Each command reads the config file ``serve`` reads, builds the server the same way (its store,
its :class:`~server.sessions.SessionService`) and calls the service methods the admin API
calls: there is no second implementation. Output is never a session id (a listing names a
session by its handle, as the admin API does) nor a secret.
"""

import argparse
import asyncio
import json
import sys

# Nothing here imports prometheus-client (handlers/ does): `serve` parses its options through
# this module before it may (server/metrics_multiprocess.py).
from server.errors import DomainError, StoreUnavailable

OK, NOTHING_MATCHED, USAGE_ERROR, STORE_UNREACHABLE = 0, 1, 2, 3

EXIT_STATUS = """exit status of sessions, users and purge:
  0  done
  1  nothing matched (sessions revoke: no live session had that owner)
  2  usage or configuration error (bad option, unknown app, store.backend = "memory")
  3  the session store did not answer within store.timeout (nothing, or part, was done)"""

def add_commands(commands, run) -> None:
    """Add ``sessions``, ``users`` and ``purge`` to the ``minisession`` subcommands;
    ``run(args)`` loads the config and calls :func:`run_command`."""
    def command(parent, name, help_text, action):
        parser = parent.add_parser(name, help=help_text, description=help_text,
                                   epilog=EXIT_STATUS,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--config", required=True,
                            help="the TOML config file of 'minisession serve'")
        parser.add_argument("--json", action="store_true", help="print JSON, for scripts")
        parser.set_defaults(run=run, action=action)
        return parser

    sessions = commands.add_parser("sessions", help="list or end the live sessions of a user",
                                   epilog=EXIT_STATUS,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = sessions.add_subparsers(dest="verb", required=True)
    for name, help_text, action in (
            ("list", "list the live sessions of a user (never their ids)", _list),
            ("revoke", "end every live session of a user", _revoke)):
        parser = command(verbs, name, help_text, action)
        parser.add_argument("--app", help="the app (default: the only app, or "
                                          "login.default_app)")
        parser.add_argument("--openid", help="the user's openid in --app")
        parser.add_argument("--user-id", help="your user id the identities are bound to")
        parser.add_argument("--unionid", help="the platform's unionid")
    users = commands.add_parser("users", help="show what is known of a user")
    show = command(users.add_subparsers(dest="verb", required=True), "show",
                   "show an identity: its binding, unionid, whether a session_key is held "
                   "(never the key) and its live sessions", _show)
    show.add_argument("--app", help="the app (default: the only app, or login.default_app)")
    show.add_argument("--openid", required=True, help="the user's openid in --app")
    command(commands, "purge", "remove the expired sessions now (the server does it every "
                               "store.purge_interval)", _purge)


def run_command(args, config) -> int:
    """Run one admin command against the store of ``config``; its exit status."""
    if config.store.backend != "mongodb":
        _fail("store.backend = 'memory' keeps sessions in the memory of the server process, "
              "out of reach of another command; use the admin API of the running server "
              "(admin.enabled) or a MongoDB store")
        return USAGE_ERROR
    if args.action in (_list, _revoke) and not (args.openid or args.user_id or args.unionid):
        _fail("give --openid, --user-id or --unionid (or several): never every session")
        return USAGE_ERROR
    from server.log_format import setup_logging

    # Errors only: the store's start-up notices (FerretDB...) are the server's to give.
    setup_logging("error", config.log.format)
    return asyncio.run(_run(args, config))


async def _run(args, config) -> int:
    from server.app import Minisession

    # The server as `serve` builds it (store, service), without serving anything.
    server_app = Minisession(config)
    try:
        await server_app.store.open()
        return await args.action(server_app.service, args)
    except StoreUnavailable:
        _fail(f"the session store did not answer within store.timeout "
              f"({config.store.timeout:g} s) at store.mongodb_uri (a revoke or purge may be "
              f"done in part): run the command again once it answers")
        return STORE_UNREACHABLE
    except DomainError as exc:  # an unknown app, an invalid user id...
        apps = f" (apps: {', '.join(config.apps)})" if exc.code in ("unknown_app",
                                                                   "app_required") else ""
        _fail(f"{exc.message}{apps}")
        return USAGE_ERROR
    finally:
        await server_app.stop()


def _owner(args) -> dict:
    return {"app": args.app, "openid": args.openid, "user_id": args.user_id,
            "unionid": args.unionid}


async def _list(service, args) -> int:
    from handlers.session import iso  # the admin API's time format

    records = await service.sessions_of(**_owner(args))
    rows = [{
        "handle": record.handle, "app": record.app, "openid": record.openid,
        "unionid": record.unionid, "user_id": record.user_id,
        "created_at": iso(record.created_at),
        "last_used_at": iso(record.touched_at),  # to within session.touch_after
        "expires_at": iso(record.expires_at),
        "client_ip": record.client_ip, "user_agent": record.user_agent,
    } for record in records]
    if args.json:
        _print_json({"sessions": rows})
    elif rows:
        _print_table(rows)
    else:
        print("no live session")
    return OK


async def _revoke(service, args) -> int:
    revoked = await service.revoke_all(**_owner(args))
    if args.json:
        _print_json({"revoked": revoked})
    else:
        print(f"revoked {revoked} session(s)")
    return OK if revoked else NOTHING_MATCHED


async def _show(service, args) -> int:
    from handlers.session import iso

    user = await service.user_summary(args.app, args.openid)
    binding = user.binding
    view = {"app": user.app, "openid": user.openid, "bound": binding is not None,
            "user_id": binding and binding.user_id,
            "bound_at": binding and iso(binding.bound_at), "unionid": user.unionid,
            "holds_session_key": user.holds_session_key, "live_sessions": user.live_sessions}
    if args.json:
        _print_json(view)
    else:
        width = max(map(len, view))
        for name, value in view.items():
            print(f"{name:<{width}}  {_text(value)}")
    return OK


async def _purge(service, args) -> int:
    purged = await service.purge_expired()
    if args.json:
        _print_json({"purged": purged})
    else:
        print(f"purged {purged} expired session(s)")
    return OK


def _print_table(rows: list[dict]) -> None:
    """Aligned columns, one row a line; the last column (the user agent) unpadded."""
    names = list(rows[0])
    cells = [[name.upper() for name in names]] + [[_text(row[n]) for n in names] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(names))]
    for line in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())


def _text(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    # A user agent is the client's text: no control character reaches the terminal.
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _print_json(value) -> None:
    print(json.dumps(value, ensure_ascii=False))  # one line: a script reads it whole


def _fail(message: str) -> None:
    print(f"minisession: {message}", file=sys.stderr)
