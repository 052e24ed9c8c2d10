"""The package's import structure: no import cycles (also none hidden in a function or under
TYPE_CHECKING), every module importable on its own, ARQ reached beyond its documented API only
through arq_jobs._arq, the worker modules take the clock from arq_jobs._clock, and what a worker or
API process does not need is not loaded (OpenTelemetry with tracing off, Fernet without a secrets key,
httpx's command-line client): memory, issue 17."""

from __future__ import annotations

import ast
import json
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


def loaded_in_a_fresh_interpreter(imports: str, watched: list[str]) -> dict[str, str]:
    """For each module of `watched`: "absent", "blocked" (None in sys.modules) or "loaded", after
    `imports` (Python statements) ran in a fresh interpreter with no JOBS_* variable set (the unit
    tests' environment)."""
    script = (
        f"{imports}\n"
        "import json, sys\n"
        "found = {n: 'absent' if n not in sys.modules else 'blocked' if sys.modules[n] is None else 'loaded'"
        " for n in sys.argv[1:]}\n"
        "print(json.dumps(found))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *watched], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, str] = json.loads(result.stdout)
    return found


def test_a_worker_loads_neither_opentelemetry_nor_fernet_until_it_needs_them() -> None:
    """Tracing is off by default (JOBS_TRACING_ENABLED) and secret inputs are sealed only with
    JOBS_SECRETS_KEY: a worker without them does not pay for OpenTelemetry's SDK (~50 modules,
    psutil) or Fernet. (cryptography itself is loaded anyway: redis-py 5 imports PyJWT, which
    imports it.) arq_jobs._tracing and arq_jobs._secrets import them on first use."""
    found = loaded_in_a_fresh_interpreter(
        "import workers, arq_jobs.worker, arq.cli\nworkers.WorkerSettings",
        ["opentelemetry", "opentelemetry.sdk", "cryptography.fernet"],
    )
    assert found == {
        "opentelemetry": "absent",
        "opentelemetry.sdk": "absent",
        "cryptography.fernet": "absent",
    }


def test_the_api_loads_no_opentelemetry_sdk_and_no_fernet_until_it_needs_them() -> None:
    """FastAPI imports OpenTelemetry's API for its own telemetry, but our SDK set-up (provider,
    exporters, instrumentation) and Fernet wait until tracing is on or a secrets key is set."""
    found = loaded_in_a_fresh_interpreter("import app.main", ["opentelemetry.sdk", "cryptography.fernet"])
    assert found == {"opentelemetry.sdk": "absent", "cryptography.fernet": "absent"}


def test_tracing_and_fernet_load_once_used() -> None:
    """The lazy imports happen where they are needed: configuring tracing (here with an exporter of
    our own, so that nothing else imports OpenTelemetry first) loads the SDK and its spans work;
    making a secrets key loads Fernet, which then encrypts and decrypts."""
    found = loaded_in_a_fresh_interpreter(
        "import sys\n"
        "from arq_jobs import Settings\n"
        "from arq_jobs._secrets import SecretsKey, new_key\n"
        "from arq_jobs._tracing import configure_tracing, enqueue_span, shutdown_tracing\n"
        "assert 'opentelemetry' not in sys.modules and 'cryptography.fernet' not in sys.modules\n"
        "class Exporter:\n"
        "    spans = []\n"
        "    def export(self, spans):\n"
        "        self.spans.extend(spans)\n"
        "    def shutdown(self):\n"
        "        pass\n"
        "exporter = Exporter()\n"
        "configure_tracing(Settings(), 'test', exporter=exporter)\n"
        "with enqueue_span('noop', 'default', 'job-1') as carrier:\n"
        "    assert carrier is not None and 'traceparent' in carrier\n"
        "shutdown_tracing()\n"
        "assert [span.name for span in exporter.spans] == ['enqueue noop']\n"
        "key = SecretsKey([new_key()])\n"
        "assert key.decrypt(key.encrypt({'a': 1})) == {'a': 1}",
        ["opentelemetry.sdk.trace", "cryptography.fernet"],
    )
    assert found == {"opentelemetry.sdk.trace": "loaded", "cryptography.fernet": "loaded"}


def test_importing_arq_jobs_keeps_httpx_cli_out() -> None:
    """httpx's `__init__` imports its command-line client (`httpx._main`: rich, pygments, click) when
    those are installed, as they are here (our CLI uses them): arq_jobs._httpx_cli marks it absent
    before anything of ours imports httpx, so a worker or API process does not load it. httpx
    treats it as the optional `cli` extra not installed: `httpx.main` is its stand-in, and the
    rest of httpx works as before."""
    found = loaded_in_a_fresh_interpreter(
        "import arq_jobs, httpx\n"
        "assert httpx.main.__module__ == 'httpx', httpx.main.__module__  # the stand-in, not httpx._main's\n"
        "assert httpx.AsyncClient and httpx.get",
        ["httpx._main", "rich.progress", "pygments.lexers"],
    )
    assert found == {"httpx._main": "blocked", "rich.progress": "absent", "pygments.lexers": "loaded"}


def test_httpx_imported_first_keeps_its_cli() -> None:
    """The `httpx` command (and any process that imported httpx before arq_jobs) keeps its CLI:
    the module is only marked absent when nothing has loaded it yet."""
    found = loaded_in_a_fresh_interpreter(
        "import sys, httpx, arq_jobs\nassert httpx.main is sys.modules['httpx._main'].main", ["httpx._main"]
    )
    assert found == {"httpx._main": "loaded"}
