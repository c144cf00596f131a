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
    {"bench"},  # edged bench: it measures the product, which never imports it
    {"tools", "daemon", "testing"},
    {"pipeline", "service", "telemetry", "looks"},
    {"sources", "engines", "publish", "analytics"},
    {"models", "artifacts", "config", "names", "addresses", "paths", "errors", "backoff", "logs", "redact", "platform"},
]
FORBIDDEN = {("models", "engines"), ("sources", "engines"), ("sources", "publish"), ("engines", "publish"),
             ("config", "daemon"), ("analytics", "publish"), ("analytics", "engines"), ("sources", "analytics")}


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


# -- file-level rules -----------------------------------------------------------------------------------------------

MAX_LINES = 400
DAEMON_MAX_LINES = 220
# Outside testing/ itself, only the bench, the demo and `edged media` (cli/others.py) may import edged.testing.
TESTING_USERS = ("edged/bench/", "edged/testing/", "edged/tools/demo.py", "edged/cli/others.py")


def imports_of(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every ``from edged... import name`` and (module, '') for ``import edged...`` in a file,
    function-level imports included."""
    out: list[tuple[str, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("edged"):
            out += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            out += [(alias.name, "") for alias in node.names if alias.name.startswith("edged")]
    return out


def files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_only_the_bench_the_demo_and_edged_media_import_testing() -> None:
    found = [f"{path.relative_to(ROOT)}: {module}" for path in files()
             for module, _ in imports_of(path) if module.startswith("edged.testing")
             and not str(path.relative_to(ROOT)).startswith(TESTING_USERS)]
    assert not found, found


def test_the_pipeline_and_analytics_never_import_home_assistant_and_analytics_makes_no_payloads() -> None:
    found = [f"{path.relative_to(ROOT)}: {module}" for path in files()
             for module, _ in imports_of(path)
             if (unit_of(path) == "pipeline" and module.startswith("edged.publish.homeassistant"))
             or (unit_of(path) == "analytics" and module.startswith("edged.publish"))]
    assert not found, found


def test_the_bench_imports_only_the_public_faces_of_pipeline_and_analytics() -> None:
    """`from edged.pipeline import Pipeline`, `from edged.analytics import CameraAnalytics`: names each package's
    __init__ lists in __all__; never a module inside them, never a private name."""
    import edged.analytics
    import edged.pipeline

    faces = {"edged.pipeline": set(edged.pipeline.__all__), "edged.analytics": set(edged.analytics.__all__)}
    found = []
    for path in (PACKAGE / "bench").rglob("*.py"):
        for module, name in imports_of(path):
            package = ".".join(module.split(".")[:2])
            if package in faces and (module != package or name not in faces[package] or name.startswith("_")):
                found.append(f"{path.relative_to(ROOT)}: from {module} import {name}")
    assert not found, found


def test_no_module_over_400_lines_and_a_small_composition_root() -> None:
    sizes = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in files()}
    over = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not over, over
    assert sizes["edged/daemon.py"] <= DAEMON_MAX_LINES, sizes["edged/daemon.py"]


def test_the_file_rules_catch_what_they_are_for(tmp_path: Path) -> None:
    """The import reader sees function-level imports and names, which the rules above rest on."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from edged.pipeline.scheduler import Scheduler\n    import edged.testing.media\n")
    assert imports_of(sample) == [("edged.pipeline.scheduler", "Scheduler"), ("edged.testing.media", "")]
