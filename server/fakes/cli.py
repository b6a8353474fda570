"""``minisession fake-platforms`` (alias ``fake-wechat``): serve every fake platform."""

import argparse
import asyncio
import logging
import tempfile
from pathlib import Path

import tornado.httpserver
import tornado.netutil

from server.fakes import make_app
from server.fakes.alipay import FakeAlipay, generate_key_pair
from server.fakes.baidu import FakeBaidu
from server.fakes.douyin import FakeDouyin
from server.fakes.kuaishou import FakeKuaishou
from server.fakes.wechat import FakeQQ, FakeWeChat

_KEY_FILES = ("app_private_key.pem", "app_public_key.pem",
              "alipay_private_key.pem", "alipay_public_key.pem")


def main(argv: list[str] | None = None, prog: str = "minisession fake-platforms") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description="Serve fake WeChat, QQ, Douyin, Baidu, Kuaishou and Alipay login "
                               "APIs for tests and development, each under /<platform>.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=9999, help="port to listen on (0: any free)")
    parser.add_argument("--appid", default="wx-fake-appid",
                        help="the appid (App Key, app_id) every platform accepts")
    parser.add_argument("--secret", default="fake-secret", help="the app secret to accept")
    parser.add_argument("--unionid", action="store_true",
                        help='answer with unionid "union-<openid>" where the platform has one')
    parser.add_argument("--alipay-keys", metavar="DIR",
                        help="directory holding (or to receive, when empty) the Alipay key pairs "
                             f"({', '.join(_KEY_FILES)}); default: a fresh temporary one")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass
    return 0


def alipay_keys(directory: Path) -> dict[str, str]:
    """The two key pairs in ``directory``, made there first if it has none."""
    paths = {name: directory / name for name in _KEY_FILES}
    if not all(path.exists() for path in paths.values()):
        directory.mkdir(parents=True, exist_ok=True)
        app_private, app_public = generate_key_pair()
        alipay_private, alipay_public = generate_key_pair()
        for name, text in zip(_KEY_FILES, (app_private, app_public, alipay_private,
                                           alipay_public)):
            paths[name].write_text(text)
            paths[name].chmod(0o600)
    return {name: path.read_text() for name, path in paths.items()}


async def _serve(args: argparse.Namespace) -> None:
    keys_dir = Path(args.alipay_keys or tempfile.mkdtemp(prefix="minisession-fake-alipay-"))
    keys = alipay_keys(keys_dir)
    common = {"appid": args.appid, "secret": args.secret, "unionid": args.unionid}
    fakes = [FakeWeChat(**common), FakeQQ(**common), FakeDouyin(**common), FakeBaidu(**common),
             FakeKuaishou(**common),
             FakeAlipay(keys["app_public_key.pem"], keys["alipay_private_key.pem"],
                        appid=args.appid)]
    sockets = tornado.netutil.bind_sockets(args.port, args.host)
    server = tornado.httpserver.HTTPServer(make_app(*fakes))
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]  # the real one when --port 0
    base = f"http://{f'[{args.host}]' if ':' in args.host else args.host}:{port}"
    print(f"fake platforms listening on {base} (appid {args.appid}); set each app's api_base "
          f"to {base}/<platform>, one of: {', '.join(f.platform for f in fakes)} "
          f"(WeChat also at {base}); Alipay keys in {keys_dir}", flush=True)
    await asyncio.Event().wait()  # serve until interrupted
