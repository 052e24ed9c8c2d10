"""The package's import structure: no import cycles (also none hidden in a function or under
TYPE_CHECKING), every module importable on its own, ARQ reached beyond its documented API only
through arq_jobs._arq, and the worker modules take the clock from arq_jobs._clock."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import arq_jobs

PACKAGE = Path(arq_jobs.__file__).parent
ROOT = PACKAGE.parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of a module: at module level, in functions, under TYPE_CHECKING."""
    tree = ast.parse(path.read_text())
    return [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]


def our_imports(name: str) -> set[str]:
    """The arq_jobs modules `name` imports (`from package import module` counts as that module; the
    packages a module lives in, which Python imports first anyway, are left out)."""
    found: set[str] = set()
    for node in imports_of(MODULES[name]):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif node.module is None or node.level:
            continue
        else:
            targets = [
                f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module
                for alias in node.names
            ]
        found.update(t for t in targets if t in MODULES and t != name and not name.startswith(t + "."))
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` (its modules in import order, the first repeated at the end), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done:
            return None
        for target in sorted(graph[node]):
            cycle = visit(target, [*path, node])
            if cycle is not None:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle is not None:
            return cycle
    return None


def test_the_import_graph_has_no_cycle() -> None:
    graph = {name: our_imports(name) for name in MODULES}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the check itself
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle: {' → '.join(cycle)}"


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    """Each module imported first in a fresh interpreter, as `python -c "import arq_jobs.X"` would.
    Python runs `arq_jobs/__init__.py` before any of its modules, so the modules it loads are
    imported once, in its order; every other module is then imported with only those of ours loaded
    (the ones an earlier module loaded are dropped first; other packages' modules stay). A cycle that breaks at import time fails here
    whichever module it is entered from."""
    script = (
        "import importlib, sys\n"
        "import arq_jobs\n"
        "base = set(sys.modules)\n"
        "for name in sys.argv[1:]:\n"
        "    for loaded in [m for m in sys.modules if m.startswith('arq_jobs.') and m not in base]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as error:\n"
        "        print(f'{name}: {error!r}')\n"
    )
    names = [name for name in MODULES if not name.endswith("__main__")]  # __main__ runs the CLI
    result = subprocess.run(
        [sys.executable, "-c", script, *names], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


# ARQ's documented API (arq-docs.helpmanual.io): everything else goes through arq_jobs._arq
PUBLIC_ARQ = {
    "arq": {"ArqRedis", "create_pool", "cron", "Retry", "Worker", "func"},
    "arq.connections": {"ArqRedis", "RedisSettings", "create_pool"},
    "arq.worker": {"Worker", "Retry", "func", "Function"},
    "arq.jobs": {"Job", "JobStatus"},
}


def test_only_arq_jobs_arq_reaches_past_arqs_documented_api() -> None:
    beyond = []
    for name, path in MODULES.items():
        if name == "arq_jobs._arq":
            continue
        for node in imports_of(path):
            if isinstance(node, ast.Import):
                beyond += [f"{name}: import {a.name}" for a in node.names if a.name.split(".")[0] == "arq"]
            elif node.module and node.module.split(".")[0] == "arq" and not node.level:
                public = PUBLIC_ARQ.get(node.module, set())
                beyond += [
                    f"{name}: from {node.module} import {a.name}" for a in node.names if a.name not in public
                ]
    assert beyond == [], "ARQ beyond its documented API outside arq_jobs._arq (move it there): " + "; ".join(
        beyond
    )


def test_the_worker_modules_take_the_clock_from_arq_jobs_clock() -> None:
    """Not from arq_jobs._client, which imports most of the package; only the modules that use a
    JobClient import it."""
    taken = {
        name: sorted(alias.name for alias in node.names)
        for name, path in MODULES.items()
        if name.startswith("arq_jobs._worker.")
        for node in imports_of(path)
        if isinstance(node, ast.ImportFrom) and node.module == "arq_jobs._client"
    }
    assert taken == {"arq_jobs._worker.context": ["JobClient"], "arq_jobs._worker.runtime": ["JobClient"]}
    clocks = {
        name
        for name, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name in ("now_ms", "ms_to_datetime")
    }
    assert clocks == {"arq_jobs._clock"}
