"""Keeps httpx's command-line client (`httpx._main`) out of our processes; imported first by
`arq_jobs/__init__.py`, before anything of ours imports httpx.

httpx's `__init__` runs `from ._main import main` whenever `click`, `rich` and `pygments` are installed
(they are: our CLI uses them), which loads rich's console, progress, syntax and table modules,
pygments' lexers and click into every worker and API process for a tool they never run. Much of
rich, pygments and click is loaded anyway (structlog imports rich for its tracebacks, the arq and
uvicorn CLIs import click), so what this saves is ~10 modules and ~0.6 MB of RSS in a worker.

With `httpx._main` marked as absent in `sys.modules`, that import fails with ImportError, which
httpx expects (the CLI is its optional `cli` extra): `httpx.main` becomes httpx's own stand-in that
prints "the httpx command line client could not run" and exits. Nothing else in httpx uses `_main`.

Only a process that imports arq_jobs before httpx is affected, and only its `httpx.main`: the
`httpx` console script imports httpx first (`from httpx import main`), so it keeps working, and
`setdefault` never replaces an `httpx._main` already loaded (a test run that imported httpx first).
"""

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
