"""The development helpers' home: ``devtools/`` serves the tests and the benchmarks alike, and
neither the benchmarks nor the installed server depend on the test suite."""

import ast
import configparser
import subprocess
import sys
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules.add(node.module)
    return modules


def test_the_benchmarks_import_nothing_from_the_tests():
    sources = sorted((ROOT / "bench").rglob("*.py"))
    assert len(sources) > 10
    from_tests = {f"{path.relative_to(ROOT)}: {module}" for path in sources
                  for module in _imported_modules(path)
                  if module == "tests" or module.startswith("tests.")}
    assert from_tests == set()
    # What they shared with the tests comes from devtools/.
    assert any(module.startswith("devtools.") for path in sources
               for module in _imported_modules(path))


def test_the_benchmark_command_starts_from_the_repository_root():
    done = subprocess.run([sys.executable, "-m", "bench.run", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "--scenarios" in done.stdout


def test_the_installed_package_holds_the_server_and_no_dev_tools():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    include = setup["options.packages.find"]["include"].split()
    packages = set(find_packages(str(ROOT), include=include))
    assert {"server", "server.http", "server.stores", "handlers"} <= packages
    assert not {name for name in packages if name.split(".")[0] in ("devtools", "tests", "bench")}
