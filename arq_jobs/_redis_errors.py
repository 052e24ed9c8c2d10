"""How a Redis error may be shown (a log line, the CLI): by its type and command, never the command's
arguments. Its own module, below `arq_jobs._logs` (which re-exports it), so that `arq_jobs._arq`, which
`_logs` imports, can use it too."""

from __future__ import annotations

import re

from redis.exceptions import ResponseError

# how redis-py annotates the error of a pipeline's command: "Command # 2 (EVAL <its arguments>) of ..."
_PIPELINE_COMMAND = re.compile(r"^Command # ([0-9]+) \(([^\s)]+)")


def describe_redis_error(error: BaseException, command: str | None = None) -> str:
    """A Redis error as a log line (or the CLI) may show it: its type, the command when known
    (`command`, else the one redis-py names when a pipeline's command failed) and, unless Redis
    itself refused the command, the message (a connection's or a socket's: host, port, errno).
    Never the command's arguments, which redis-py puts in a pipeline's errors (a job's input, a
    dead letter), nor Redis' reply to it, which may quote them."""
    text = str(error.args[0]) if error.args else ""
    annotated = _PIPELINE_COMMAND.match(text)
    name = command or (annotated.group(2) if annotated else None)
    where = f" in {name.upper()}" if name else ""
    if annotated:
        where += f" (command {annotated.group(1)} of a pipeline)"
    if isinstance(error, ResponseError) or annotated:
        return f"{type(error).__name__}{where}"
    return f"{type(error).__name__}{where}: {error}" if text else f"{type(error).__name__}{where}"
