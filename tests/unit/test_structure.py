"""The tree keeps its shape: no package cycles, layers point down, the README's MQTT table is the contract."""

from __future__ import annotations

import ast
import itertools
import re
from collections import defaultdict
from pathlib import Path

from edged.publish.contract import TOPICS

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "edged"

# Each package may import only from packages in its own layer or below (DESIGN section 2).
LAYERS: list[set[str]] = [
    {"__main__", "cli"},
    {"tools", "daemon", "testing"},
    {"pipeline", "service", "telemetry"},
    {"sources", "engines", "publish"},
    {"models", "artifacts", "config", "names", "addresses", "paths", "errors", "backoff", "logs", "redact", "platform"},
]
FORBIDDEN = {("models", "engines"), ("sources", "engines"), ("sources", "publish"), ("engines", "publish"),
             ("config", "daemon")}


def unit_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def import_graph() -> dict[str, dict[str, set[str]]]:
    """package -> imported package -> the files that import it (module-level and function-level imports)."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in PACKAGE.rglob("*.py"):
        source = unit_of(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] != "edged" or len(parts) < 2 or parts[1] == source:
                    continue
                if (PACKAGE / parts[1]).is_dir() or (PACKAGE / f"{parts[1]}.py").is_file():
                    graph[source][parts[1]].add(str(path.relative_to(ROOT)))
    return graph


def find_cycle(graph: dict[str, dict[str, set[str]]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_package_cycles() -> None:
    graph = import_graph()
    cycle = find_cycle(graph)
    where = [sorted(graph[a][b]) for a, b in itertools.pairwise(cycle)] if cycle else []
    assert cycle is None, f"package cycle {' -> '.join(cycle or [])}: {where}"


def test_the_cycle_finder_finds_one() -> None:
    graph = {"a": {"b": {"a.py"}}, "b": {"c": {"b.py"}}, "c": {"a": {"c.py"}}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": {"a.py"}}}) is None


def test_imports_point_down_the_layers() -> None:
    layer = {name: index for index, names in enumerate(LAYERS) for name in names}
    graph = import_graph()
    unknown = sorted(set(graph) - set(layer))
    assert not unknown, f"packages missing from LAYERS: {unknown}"
    upward = [(a, b, sorted(files)) for a, targets in graph.items() for b, files in targets.items()
              if layer[b] < layer[a] or (a, b) in FORBIDDEN]
    assert not upward, upward
    importers_of_cli = {a for a, targets in graph.items() if "cli" in targets}
    assert importers_of_cli <= {"__main__"}, importers_of_cli  # nothing but ``python -m edged`` imports cli


def test_readme_mqtt_table_is_the_contract() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### MQTT contract", 1)[1].split("\n### ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \| (yes|no) \|", section, flags=re.M)
    documented = {(topic, qos.strip().strip("`").split("`")[0].strip(), retained == "yes")
                  for topic, qos, retained in rows}
    contract = {(t.pattern, t.qos, t.retained) for t in TOPICS}
    assert documented == contract


def test_every_package_is_in_the_wheel() -> None:
    """A directory of modules without __init__.py works from a checkout (and `pip install -e`) but is left out
    of a wheel by find_packages: `pip install .` (scripts/install-service.sh) installed an edged without
    artifacts/, service/ and testing/ until the arm64 run caught it."""
    with_modules = [p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__" and any(p.glob("*.py"))]
    # find_packages takes a directory only when it, and every directory above it, has an __init__.py.
    inside = [p.relative_to(PACKAGE) for p in with_modules]
    needed = {PACKAGE / parent for p in inside for parent in (p, *p.parents)}
    missing = sorted(str(d.relative_to(ROOT)) for d in needed if not (d / "__init__.py").is_file())
    assert not missing, missing
