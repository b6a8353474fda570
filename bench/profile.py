"""Sampling profiles of a server under load (py-spy), summed up as text.

py-spy samples a running process from outside (100 samples/s), so the server runs unchanged.
The collapsed stacks it writes are summed two ways: the functions most often on the stack
("inclusive", where time goes below a call) and the code areas most often at the top of it
("self", where the CPU actually is).
"""

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

#: Top-level paths (as py-spy prints them) that are minisession's own code.
OWN = {"server": "minisession server/", "handlers": "minisession handlers/"}


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start(pid: int, seconds: float, output: Path) -> subprocess.Popen:
    """Start sampling ``pid`` for ``seconds``; wait on the returned process."""
    tool = py_spy()
    if tool is None:
        raise RuntimeError("py-spy is not installed: pip install py-spy (a tool, not a "
                           "project dependency)")
    return subprocess.Popen(
        [tool, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
         "--rate", "100", "--format", "raw", "--output", str(output), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _parse(frame: str) -> tuple[str, str]:
    """``handle (tornado/web.py:1234)`` -> (``handle (tornado/web.py)``, ``tornado``)."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    top = path.split("/", 1)[0].removesuffix(".py") if path else "?"
    if top.startswith("<"):
        top = "interpreter"
    return (f"{name} ({path})" if path else name), OWN.get(top, top)


def summarize(raw: Path, top: int = 12) -> dict:
    """Where the samples are, in % of all samples (of every thread).

    ``self_by_area``: the code at the top of the stack, by top-level package (``tornado``,
    ``logging``, ``pymongo``..., minisession's own ``server/`` and ``handlers/``);
    ``self_functions``: the functions at the top; ``own_inclusive``: minisession's own
    functions anywhere on the stack, i.e. the time spent in them and below them.
    """
    self_area: Counter = Counter()
    self_function: Counter = Counter()
    own_inclusive: Counter = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [_parse(frame) for frame in stack.split(";")]
        total += samples
        leaf_name, leaf_area = frames[-1]
        self_area[leaf_area] += samples
        self_function[leaf_name] += samples
        for name in {name for name, area in frames if area in OWN.values()}:
            own_inclusive[name] += samples
    if not total:
        return {"samples": 0, "self_by_area": [], "self_functions": [], "own_inclusive": []}

    def share(counter: Counter) -> list[tuple[str, float]]:
        return [(name, round(100 * count / total, 1)) for name, count in counter.most_common(top)]

    return {"samples": total, "self_by_area": share(self_area),
            "self_functions": share(self_function), "own_inclusive": share(own_inclusive)}


def format_summary(title: str, summary: dict) -> str:
    lines = [f"{title}: {summary['samples']} samples"]
    for key, heading in (("self_by_area", "self time by package"),
                         ("self_functions", "self time by function"),
                         ("own_inclusive", "minisession's functions, with what they call")):
        lines.append(f"  {heading}:")
        lines += [f"    {pct:5.1f}%  {name}" for name, pct in summary[key]]
    return "\n".join(lines)
