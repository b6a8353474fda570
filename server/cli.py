"""The ``minisession`` command: ``serve`` the session server, ``check-config``, ``keygen`` (fresh
secrets for the config), ``migrate`` (once, after upgrading to apps), the admin commands
``sessions list|revoke``, ``users show`` and ``purge`` (server/admin_cli.py), or run the
``fake-platforms`` dev tool."""

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys

from tornado.netutil import bind_sockets

log = logging.getLogger("minisession")


async def _serve(config, sockets, max_connections: int, metrics_sockets=()) -> int:
    """Serve on ``sockets`` (bound already), holding at most ``max_connections`` connections,
    until SIGTERM/SIGINT, then drain; exit status. ``/metrics`` on ``metrics_sockets``."""
    from server.app import Minisession
    from server.http.httpserver import make_http_server

    server_app = Minisession(config)
    await server_app.start()
    if config.store.require_at_start and not server_app.store_ready:
        await server_app.stop()
        print(f"minisession: the session store did not answer within store.timeout "
              f"({config.store.timeout:g} s) and store.require_at_start = true: not starting",
              file=sys.stderr)
        return 1
    http, tracker = make_http_server(server_app.application, config, max_connections)
    # Everything made so far (modules, the application, the store's client) lives as long as
    # the process: out of the garbage collector's sight, its full passes walk only what
    # requests leave behind (40-48 -> 2-4 ms each on the MongoDB store under load:
    # python3 -m bench.run --gc-probe).
    gc.collect()
    gc.freeze()
    http.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    apps = ", ".join(f"{name} ({app.platform})" for name, app in config.apps.items())
    loop = asyncio.get_running_loop()
    log.info("minisession listening on http://%s:%d (store: %s, apps: %s, event loop: %s, "
             "pid %d)", config.server.host, port, config.store.backend, apps,
             type(loop).__module__.partition(".")[0], os.getpid())
    metrics_http = _serve_metrics(metrics_sockets)

    stopping, hurry = asyncio.Event(), asyncio.Event()

    def on_signal() -> None:
        # A second SIGTERM/SIGINT cuts the grace period short.
        (hurry if stopping.is_set() else stopping).set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    # A pre-forked worker starts with these blocked (server/workers.py): deliver them now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    await stopping.wait()

    grace = config.server.shutdown_grace
    log.info("shutting down: no new connections; %d requests in flight get up to %g s",
             tracker.in_flight, grace)
    http.stop()
    cut_off = await tracker.drain(grace, hurry)
    if cut_off:
        log.warning("%d requests still in flight after the grace period; closing them", cut_off)
    await http.close_all_connections()
    if metrics_http is not None:
        metrics_http.stop()  # scrapable while draining, not after
        await metrics_http.close_all_connections()
    await server_app.stop()
    if cut_off:
        # Let what was cut off end by itself (its pools are closed, so it fails at once)
        # rather than be cancelled mid-call when the event loop closes.
        await tracker.settle(1.0)
    log.info("stopped: %d requests accepted since start, %d cut off", tracker.accepted, cut_off)
    return 0


def _serve_metrics(sockets):
    """The metrics listener on ``sockets`` (none: no listener)."""
    if not sockets:
        return None
    from tornado.httpserver import HTTPServer

    from handlers.metrics import make_metrics_app

    metrics_http = HTTPServer(make_metrics_app())
    metrics_http.add_sockets(sockets)
    host, port = sockets[0].getsockname()[:2]
    log.info("metrics on http://%s:%d/metrics", host if ":" not in host else f"[{host}]", port)
    return metrics_http


def _bind_metrics(config):
    """The bound metrics sockets (``[]`` when admin.metrics_listen is ""), or None after
    telling the administrator why it cannot listen."""
    if not config.admin.metrics_listen:
        return []
    from server.config import split_listen_address

    host, port = split_listen_address(config.admin.metrics_listen)
    try:
        return bind_sockets(port, address=host)
    except OSError as exc:
        print(f"minisession: cannot listen for metrics on {config.admin.metrics_listen} "
              f"(admin.metrics_listen): {exc.strerror}", file=sys.stderr)
        return None


def _load_config(path: str):
    """The validated config, or None after telling the administrator what is wrong."""
    from server.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"minisession: configuration error: {exc}", file=sys.stderr)
        return None


def _serve_command(args) -> int:
    config = _load_config(args.config)
    if config is None:
        return 2
    from server.log_format import setup_logging

    setup_logging(config.log.level, config.log.format)
    for notice in config.notices:
        log.warning("%s", notice)
    from server.http.tornado_compat import UntestedTornado, require_tested_tornado

    try:
        require_tested_tornado()  # before forking: refused or warned once
    except UntestedTornado as exc:
        print(f"minisession: {exc}", file=sys.stderr)
        return 1
    from server.http.connection_limits import connection_cap, raise_fd_limit

    # Before forking: the workers inherit the limit (and the warning is given once).
    max_connections = connection_cap(config.server.max_connections, raise_fd_limit())
    # Bound before anything else (and before forking workers, who then share the socket).
    try:
        sockets = bind_sockets(config.server.port, address=config.server.host)
    except OSError as exc:
        print(f"minisession: cannot listen on {config.server.host}:{config.server.port}: "
              f"{exc.strerror}", file=sys.stderr)
        return 1
    metrics_sockets = _bind_metrics(config)  # before forking too: one listener for all
    if metrics_sockets is None:
        return 1
    from server.metrics_multiprocess import metrics_dir, worker_exited

    # Before anything imports prometheus-client: it reads PROMETHEUS_MULTIPROC_DIR once.
    from server.event_loop import run

    with metrics_dir(config.server.workers):
        def serve_one() -> int:
            return run(_serve(config, sockets, max_connections, metrics_sockets),
                       config.server.event_loop)

        if config.server.workers == 1:
            return serve_one()
        from server.workers import run_workers

        return run_workers(config.server.workers, serve_one, on_exit=worker_exited)


def _check_command(args) -> int:
    config = _load_config(args.config)
    if config is None:
        return 2
    for notice in config.notices:
        print(f"notice: {notice}")
    from server.http.tornado_compat import UntestedTornado, tornado_notice

    try:
        if notice := tornado_notice():
            print(f"notice: {notice}")
    except UntestedTornado as exc:
        print(f"minisession: {exc}", file=sys.stderr)
        return 1
    print(f"{args.config}: OK")
    return 0


def _migrate_command(args) -> int:
    """Give the records of the version before apps to one app (see MongoStore.migrate_legacy)."""
    config = _load_config(args.config)
    if config is None:
        return 2
    app = args.app or config.login.default_app or (
        next(iter(config.apps)) if len(config.apps) == 1 else None)
    if app is None:
        print("minisession: several apps are configured and none is login.default_app: name "
              "the app the existing records belong to with --app", file=sys.stderr)
        return 2
    if app not in config.apps:
        print(f"minisession: unknown app {app!r}; apps: {', '.join(config.apps)}",
              file=sys.stderr)
        return 2
    if config.store.backend != "mongodb":
        print("nothing to migrate: store.backend = 'memory' keeps nothing across restarts")
        return 0
    return asyncio.run(_migrate(config, app))


async def _migrate(config, app: str) -> int:
    from server.errors import StoreUnavailable
    from server.sealing import Sealer
    from server.sessions import legacy_resealer
    from server.app import make_store

    store = make_store(config)
    try:
        users, sessions = await store.migrate_legacy(
            app, legacy_resealer(Sealer(config.store.encryption_keys), app))
    except StoreUnavailable:
        print("minisession: the session store did not answer; nothing or part was migrated, "
              "run the command again", file=sys.stderr)
        return 1
    finally:
        await store.close()
    print(f"migrated {users} user(s) and {sessions} session(s) of app {app!r}")
    return 0


def _admin_command(args) -> int:
    config = _load_config(args.config)
    if config is None:
        return 2
    from server.admin_cli import run_command

    return run_command(args, config)


def _keygen_command(args) -> int:
    from server.keygen import keygen_text

    print(keygen_text(), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["fake-platforms"], ["fake-wechat"]):  # fake-wechat: the old name
        from server.fakes.cli import main as fake_main

        return fake_main(argv[1:], prog="minisession " + argv[0])
    from server.admin_cli import EXIT_STATUS, add_commands

    parser = argparse.ArgumentParser(prog="minisession", description=__doc__,
                                     epilog=EXIT_STATUS,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the session server")
    serve.add_argument("--config", required=True, help="path to the TOML config file")
    serve.set_defaults(run=_serve_command)
    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("--config", required=True, help="path to the TOML config file")
    check.set_defaults(run=_check_command)
    migrate = commands.add_parser("migrate", help="once, after upgrading to apps: give the "
                                                  "existing records to one app")
    migrate.add_argument("--config", required=True, help="path to the TOML config file")
    migrate.add_argument("--app", help="the app the existing records belong to (default: "
                                       "the only app, or login.default_app)")
    migrate.set_defaults(run=_migrate_command)
    keygen = commands.add_parser("keygen", help="print fresh session.secrets, "
                                                "store.encryption_keys and admin.api_keys")
    keygen.set_defaults(run=_keygen_command)
    add_commands(commands, _admin_command)
    commands.add_parser("fake-platforms", help="run fake WeChat, QQ, Douyin, Baidu, Kuaishou "
                                               "and Alipay login APIs for development (see "
                                               "'minisession fake-platforms --help'; alias "
                                               "fake-wechat)")
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
