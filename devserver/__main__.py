"""`python -m devserver [--embedded-redis]` (what `make run` runs): the API and one worker per queue
(`arq workers.WorkerSettings` for the default queue, `arq workers.HighWorkerSettings`, ... for the
others in `JOBS_QUEUES`).

Redis: `JOBS_REDIS_URL` when set; else 127.0.0.1:6379 when it answers; else (or with
`--embedded-redis`) an embedded redis-server on a free port. Ctrl-C (or SIGTERM) stops the API and
the workers, then the embedded Redis, and leaves no process behind. A worker that exits on its own
is restarted after a backoff (1 s doubling to 30 s; reset once it stayed up 60 s); when the API
exits, the devserver stops everything.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import httpx

from arq_jobs._cli.session import display_url  # never print a password
from arq_jobs._config import Settings, load_settings, pool_class_name
from devserver.redis_server import EmbeddedRedis, is_reachable
from devserver.supervise import Backoff, Supervised, describe_exit

LOCAL_REDIS = "redis://127.0.0.1:6379/0"
WEBHOOK_EXCEPTIONS = "JOBS_WEBHOOK_ALLOWED_HOSTS"
LOOPBACK_HOSTS = "127.0.0.1,::1,localhost"
STOP_TIMEOUT_S = 20


class Stop(Exception):
    """A signal asked the runner to stop."""


class Signals:
    """SIGINT, SIGTERM and SIGHUP raise Stop, except while held back (a child being started), so
    that no child can start without the devserver knowing it must stop it."""

    def __init__(self) -> None:
        self._holding = False
        self._pending: str | None = None

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._holding:
            self._pending = name
            return
        raise Stop(name)

    @contextmanager
    def held(self) -> Iterator[None]:
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self._pending is not None:
            raise Stop(self._pending)


def external_redis(settings: Settings, force_embedded: bool) -> str | None:
    """The Redis to use when it is not to be embedded."""
    if force_embedded:
        return None
    if "redis_url" in settings.model_fields_set:
        return str(settings.redis_url)
    return LOCAL_REDIS if is_reachable(LOCAL_REDIS) else None


def webhook_exceptions(settings: Settings) -> tuple[dict[str, str], str]:
    """The environment that lets the workers' requests reach loopback (a webhook to the API itself, as
    in the README) unless the user chose JOBS_WEBHOOK_ALLOWED_HOSTS (even empty), and a line saying so."""
    if "webhook_allowed_hosts" in settings.model_fields_set or WEBHOOK_EXCEPTIONS in os.environ:
        chosen = ",".join(settings.webhook_allowed_hosts) or "(none)"
        return {}, f"webhooks may reach internal hosts only as {WEBHOOK_EXCEPTIONS} allows: {chosen}"
    return (
        {WEBHOOK_EXCEPTIONS: LOOPBACK_HOSTS},
        f"webhooks may reach loopback ({WEBHOOK_EXCEPTIONS}={LOOPBACK_HOSTS}; set it to change this)",
    )


def authentication(settings: Settings) -> tuple[dict[str, str], str]:
    """The environment that runs the local API without keys (JOBS_AUTH=off: loopback only, so every
    README example works as printed) unless the user chose JOBS_AUTH, and a line saying so."""
    if "auth" in settings.model_fields_set or "JOBS_AUTH" in os.environ:
        if settings.auth == "off":
            return {}, "authentication is OFF (JOBS_AUTH=off): the API serves loopback clients only"
        return (
            {},
            "authentication: API keys (JOBS_AUTH=keys); make one with "
            "`arq-jobs keys create NAME --scope admin`",
        )
    return (
        {"JOBS_AUTH": "off"},
        "authentication is OFF for local development (JOBS_AUTH=off: the API serves loopback clients "
        "only); JOBS_AUTH=keys turns API keys on",
    )


def wait_ready(url: str, processes: list[subprocess.Popen[bytes]], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise SystemExit("the API or a worker exited during start-up (see the lines above)")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the API did not become ready at {url} within {timeout_s:.0f}s")


def worker_commands(settings: Settings, arq: str) -> list[tuple[str, list[str]]]:
    """Each queue's pool: its queue and the arq command that runs it."""
    found = []
    for queue in settings.queues:
        pool = "WorkerSettings" if queue == settings.queue_name else pool_class_name(queue)
        found.append((queue, [arq, f"workers.{pool}"]))
    return found


def warn(message: str) -> None:
    print(f"devserver: {message}", file=sys.stderr, flush=True)


def supervise(children: list[Supervised], signals: Signals) -> None:
    """Restart workers that exit, with backoff; return when a child without a restart policy (the
    API) exits."""
    while True:
        now = time.monotonic()
        for child in children:
            returncode = child.exited()
            if returncode is not None:
                if child.policy is None:
                    warn(f"{child.name} {describe_exit(returncode)}; stopping the others")
                    return
                delay = child.schedule_restart(now)
                warn(f"{child.name} {describe_exit(returncode)}; restarting in {delay:g}s")
            elif child.restart_due(now):
                with signals.held():
                    child.start()
                assert child.process is not None
                print(f"devserver: {child.name} restarted (pid {child.process.pid})", flush=True)
        time.sleep(0.2)


def started(children: list[Supervised]) -> list[subprocess.Popen[bytes]]:
    return [child.process for child in children if child.process is not None]


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devserver", description=__doc__)
    parser.add_argument(
        "--embedded-redis", action="store_true", help="start an embedded Redis even if one is reachable"
    )
    args = parser.parse_args()
    settings = load_settings()
    signals = Signals()
    signals.install()

    embedded: EmbeddedRedis | None = None
    children: list[Supervised] = []
    code = 0
    try:
        redis_url = external_redis(settings, args.embedded_redis)
        if redis_url is None:
            embedded = EmbeddedRedis()
            with signals.held():
                redis_url = embedded.start().url
        where = f"embedded redis-server on {redis_url}" if embedded else display_url(redis_url)
        print(f"devserver: Redis: {where}", flush=True)
        exceptions, said = webhook_exceptions(settings)
        print(f"devserver: {said}", flush=True)
        auth, said = authentication(settings)
        print(f"devserver: {said}", flush=True)
        env = {**os.environ, **exceptions, **auth, "JOBS_REDIS_URL": redis_url}
        arq = str(Path(sys.executable).with_name("arq"))
        children.append(Supervised("the API", [sys.executable, "-m", "app"], env))
        for n, (queue, command) in enumerate(worker_commands(settings, arq)):
            worker_env = env
            if settings.worker_metrics_port:  # one port per pool: they share this host
                worker_env = {**env, "JOBS_WORKER_METRICS_PORT": str(settings.worker_metrics_port + n)}
            print(f"devserver: queue {queue}: {' '.join([Path(command[0]).name, *command[1:]])}", flush=True)
            children.append(Supervised(f"worker of queue {queue}", command, worker_env, Backoff()))
        for child in children:
            with signals.held():
                child.start()
        base = f"http://{settings.api_host}:{settings.api_port}"
        wait_ready(f"{base}/health/ready", started(children))
        dashboard = f", dashboard at {base}{settings.dashboard_prefix}/" if settings.dashboard_enabled else ""
        print(f"devserver: API docs at {base}/docs{dashboard}  (Ctrl-C stops everything)", flush=True)
        supervise(children, signals)
        code = 1
    except Stop as stop:
        grace = settings.shutdown_grace_s
        print(f"devserver: {stop}: stopping (running jobs get up to {grace}s to finish)", flush=True)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        stop_all(started(children))
        if embedded is not None:
            embedded.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
