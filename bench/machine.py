"""What a result was measured on: the machine, the versions of everything involved, the commit."""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil

from arq_jobs._version import PACKAGE_VERSION

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("arq", "redis", "hiredis", "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "pydantic")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "os": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def versions(redis_server: str | None) -> dict[str, str | None]:
    found: dict[str, str | None] = {
        "python": platform.python_version(),
        "python_implementation": sys.implementation.name,
        "arq-jobs": PACKAGE_VERSION,
    }
    found.update({name if name != "redis" else "redis-py": package_version(name) for name in PACKAGES})
    found["redis-server"] = redis_server
    return found


def git_commit(root: Path = ROOT) -> str | None:
    """The checked-out commit, read from .git's files (no git process)."""
    git = root / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = (root / git.read_text().split(":", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        ref = head.split(":", 1)[1].strip()
        for base in (git, _common_dir(git)):
            loose = base / ref
            if loose.is_file():
                return loose.read_text().strip()
            packed = base / "packed-refs"
            if packed.is_file():
                for line in packed.read_text().splitlines():
                    if line.endswith(f" {ref}"):
                        return line.split(" ", 1)[0]
    except OSError:
        pass
    return None


def _common_dir(git: Path) -> Path:
    common = git / "commondir"
    return (git / common.read_text().strip()).resolve() if common.is_file() else git
