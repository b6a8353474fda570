"""The Tornado adapter (server/http/): the one module that touches Tornado's private members,
and the start-up check that the installed Tornado is a version those uses were tested with."""

import ast
import configparser
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tornado

from handlers.extend import SessionRequestHandler
from server.app import Minisession
from server.http import tornado_compat
from server.http.tornado_compat import (
    ALLOW_ENV,
    TESTED_VERSIONS,
    UntestedTornado,
    tornado_notice,
)
from tests.conftest import make_config, run_minisession
from devtools.processes import server_config, to_toml

ROOT = Path(__file__).resolve().parent.parent
ADAPTER = ROOT / "server" / "http" / "tornado_compat.py"
#: Every directory of Python source that runs with Tornado.
SOURCE_DIRS = ("server", "handlers", "bench", "devtools", "tests")
UNTESTED = "6.4.2"

# -- the version check -------------------------------------------------------------------------


def test_the_pinned_tornado_is_the_tested_one():
    # Bumping the pin in setup.cfg must come with a look at tornado_compat.py.
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    pin = re.search(r"^tornado==(\S+)$", setup["options"]["install_requires"], re.MULTILINE)
    assert pin and pin.group(1) in TESTED_VERSIONS
    assert tornado.version in TESTED_VERSIONS
    assert tornado_notice(environ={}) is None  # the installed one starts without a word


def test_an_untested_tornado_is_refused_naming_both_versions():
    with pytest.raises(UntestedTornado) as refused:
        tornado_notice(UNTESTED, environ={})
    message = str(refused.value)
    assert UNTESTED in message and all(version in message for version in TESTED_VERSIONS)
    assert ALLOW_ENV in message  # and how to start anyway


def test_the_override_allows_exactly_the_version_it_names():
    notice = tornado_notice(UNTESTED, environ={ALLOW_ENV: UNTESTED})
    assert UNTESTED in notice and "not tested" in notice
    # An override written for one upgrade does not let the next one through unchecked.
    with pytest.raises(UntestedTornado) as refused:
        tornado_notice("6.6.0", environ={ALLOW_ENV: UNTESTED})
    assert "6.6.0" in str(refused.value)


def test_an_embedded_server_refuses_an_untested_tornado(monkeypatch):
    # Another Tornado cannot be installed beside the pinned one here: its version string can.
    monkeypatch.setattr(tornado, "version", UNTESTED)
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    with pytest.raises(UntestedTornado):
        Minisession(make_config())


def _cli_with_tornado(version: str, *args: str, env: dict | None = None):
    """``minisession ARGS`` in a real process whose Tornado says it is ``version``."""
    program = ("import sys, tornado; tornado.version = sys.argv[1]; "
               "from server.cli import main; sys.exit(main(sys.argv[2:]))")
    return subprocess.run([sys.executable, "-c", program, version, *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=30, check=False)


def test_serve_and_check_config_refuse_an_untested_tornado(tmp_path):
    path = tmp_path / "dev.toml"
    path.write_text(to_toml(server_config()))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    for command in ("serve", "check-config"):
        done = _cli_with_tornado(UNTESTED, command, "--config", str(path), env=env)
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert f"Tornado {UNTESTED}" in done.stderr and TESTED_VERSIONS[0] in done.stderr
        assert "Traceback" not in done.stderr and "listening" not in done.stderr

    allowed = _cli_with_tornado(UNTESTED, "check-config", "--config", str(path),
                                env={**env, ALLOW_ENV: UNTESTED})
    assert allowed.returncode == 0, allowed.stderr
    assert "OK" in allowed.stdout and f"Tornado {UNTESTED}" in allowed.stdout


# -- Tornado's own log lines ------------------------------------------------------------------


class PagedHandler(SessionRequestHandler):
    """A handler of the app's own that needs a query argument."""

    def get(self):
        self.write_json({"page": self.get_argument("page")})


@pytest.fixture
def server(config, store, clock, io_loop):
    yield from run_minisession(io_loop, config, clock=clock, store=store,
                               extra_routes=[(r"/paged", PagedHandler)])


@pytest.mark.gen_test(timeout=20)
async def test_tornados_warnings_name_a_request_without_its_query_string(client, caplog):
    # Tornado describes the request in its warnings through a private hook the adapter sets:
    # its default quotes the URI, and a query string may hold a login code.
    code = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    with caplog.at_level(logging.WARNING, logger="tornado.general"):
        response = await client.request("GET", f"/paged?code={code}")
    assert response.code == 400 and response.json["error"] == "bad_request"
    warnings = [r.getMessage() for r in caplog.records if r.name == "tornado.general"]
    assert any(w.startswith("400 GET /paged (") and "Missing argument page" in w
               for w in warnings), warnings
    assert not any(code in record.getMessage() for record in caplog.records)


# -- Tornado's private members, in one module only ------------------------------------------


def _defined_privates(classdef: ast.ClassDef) -> set[str]:
    """The private names a class defines: methods, class attributes, ``self._name = ...``."""
    names = {item.name for item in classdef.body
             if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)}
    for item in classdef.body:
        if isinstance(item, ast.Assign | ast.AnnAssign):
            targets = item.targets if isinstance(item, ast.Assign) else [item.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    names.update(node.attr for node in ast.walk(classdef)
                 if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store))
    return {name for name in names if name.startswith("_") and not name.endswith("__")}


def _base_names(classdef: ast.ClassDef) -> list[str]:
    return [ast.unparse(base) for base in classdef.bases]


def _tornado_source() -> tuple[set[str], dict[str, set[str]]]:
    """Every private name Tornado's source defines (``x._name = ...`` anywhere, methods and
    class attributes), and, for each Tornado class, those it defines or inherits."""
    every: set[str] = set()
    classes: dict[str, tuple[set[str], list[str]]] = {}
    for path in Path(tornado.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                classes[node.name] = (_defined_privates(node), _base_names(node))
                every |= classes[node.name][0]
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                every.add(node.attr)

    def inherited(name: str) -> set[str]:
        own, bases = classes.get(name, (set(), []))
        return own.union(*(inherited(base.split(".")[-1]) for base in bases))

    every = {name for name in every if name.startswith("_") and not name.endswith("__")}
    return every, {name: inherited(name) for name in classes}


TORNADO_PRIVATE, TORNADO_CLASS_PRIVATE = _tornado_source()


def _tornado_inherited(trees: dict[Path, ast.Module]) -> dict[str, set[str]]:
    """For each of our classes that derives from Tornado's (directly or through ours), the
    private names it inherits from Tornado."""
    from_tornado = {"tornado"} | {alias.asname or alias.name
                                  for tree in trees.values() for node in ast.walk(tree)
                                  if isinstance(node, ast.ImportFrom)
                                  and (node.module or "").startswith("tornado")
                                  for alias in node.names}
    classes = [node for tree in trees.values() for node in ast.walk(tree)
               if isinstance(node, ast.ClassDef)]
    inherited: dict[str, set[str]] = {}
    while True:
        found = {}
        for node in classes:
            for base in _base_names(node):
                if base.split(".")[0] in from_tornado:
                    names = TORNADO_CLASS_PRIVATE.get(base.split(".")[-1], set())
                elif base in inherited:
                    names = inherited[base]
                else:
                    continue
                found[node.name] = found.get(node.name, set()) | names
        if found == inherited:
            return inherited
        inherited = found


def _uses(tree: ast.Module, inherited: dict[str, set[str]]) -> list[tuple[int, str]]:
    """(line, name) of each use of a Tornado private member: on any object but ``self``, and
    on ``self`` (attributes, methods) in a class that inherits that name from Tornado."""
    uses = []

    def visit(node, own: set[str]) -> None:
        if isinstance(node, ast.ClassDef):
            own = inherited.get(node.name, set())
            uses.extend((item.lineno, item.name) for item in node.body
                        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                        and item.name in own)
        elif isinstance(node, ast.Attribute):
            on_self = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if node.attr in (own if on_self else TORNADO_PRIVATE):
                uses.append((node.lineno, node.attr))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) > 1
              and isinstance(node.args[1], ast.Constant) and node.args[1].value in TORNADO_PRIVATE):
            uses.append((node.lineno, node.args[1].value))
        for child in ast.iter_child_nodes(node):
            visit(child, own)

    visit(tree, set())
    return uses


def _sources() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path))
            for directory in SOURCE_DIRS for path in sorted((ROOT / directory).rglob("*.py"))}


def test_only_the_adapter_touches_tornados_private_members():
    trees = _sources()
    inherited = _tornado_inherited(trees)
    assert {"_finished", "_reason"} <= inherited["SessionRequestHandler"]
    assert "_handle_connection" in inherited["CappedHTTPServer"]
    outside = [f"{path.relative_to(ROOT)}:{line} {name}"
               for path, tree in trees.items() if path != ADAPTER
               for line, name in _uses(tree, inherited)]
    assert outside == []
    # The scan finds them where they are: it would find them elsewhere too.
    inside = {name for _, name in _uses(trees[ADAPTER], inherited)}
    assert {"_body_future", "_finished", "_reason", "_request_summary",
            "_disconnect_on_finish"} <= inside
