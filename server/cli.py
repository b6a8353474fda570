"""The ``minisession`` command: ``serve`` the session server, or run the ``fake-wechat`` dev tool."""

import argparse
import asyncio
import logging
import signal
import sys

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

log = logging.getLogger("minisession")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


async def _serve(config) -> None:
    from server.app import Minisession
    from server.http_options import http_server_options

    server_app = Minisession(config)
    await server_app.start()
    http = HTTPServer(server_app.application, **http_server_options(config))
    sockets = bind_sockets(config.server.port, address=config.server.host)
    http.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    log.info("minisession listening on http://%s:%d (store: %s, login: %s)",
             config.server.host, port, config.store.backend, config.login.provider)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()

    log.info("shutting down")
    http.stop()
    try:
        await asyncio.wait_for(http.close_all_connections(), config.server.shutdown_grace)
    except TimeoutError:
        log.warning("connections still open after %.1f s; closing anyway",
                    config.server.shutdown_grace)
    await server_app.stop()


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
    _setup_logging(config.log.level)
    for notice in config.notices:
        log.warning("%s", notice)
    try:
        asyncio.run(_serve(config))
    except OSError as exc:
        print(f"minisession: cannot listen on {config.server.host}:{config.server.port}: "
              f"{exc.strerror}", file=sys.stderr)
        return 1
    return 0


def _check_command(args) -> int:
    config = _load_config(args.config)
    if config is None:
        return 2
    for notice in config.notices:
        print(f"notice: {notice}")
    print(f"{args.config}: OK")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fake-wechat"]:
        from server.fake_wechat import main as fake_main

        return fake_main(argv[1:])
    parser = argparse.ArgumentParser(prog="minisession", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the session server")
    serve.add_argument("--config", required=True, help="path to the TOML config file")
    serve.set_defaults(run=_serve_command)
    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("--config", required=True, help="path to the TOML config file")
    check.set_defaults(run=_check_command)
    commands.add_parser("fake-wechat", help="run a fake WeChat API for development "
                                            "(see 'minisession fake-wechat --help')")
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
