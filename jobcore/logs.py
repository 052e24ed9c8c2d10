"""Logging set-up shared by the API and the workers."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """Send all logs to stderr at `level` in one format.

    The arq CLI installs its own handler on the `arq` logger after importing the settings module;
    it is removed here so that arq's lines are not printed twice in two formats.
    """
    logging.basicConfig(level=level, format=FORMAT, force=True)
    arq_logger = logging.getLogger("arq")
    for handler in list(arq_logger.handlers):
        arq_logger.removeHandler(handler)
    arq_logger.setLevel(level)
    arq_logger.propagate = True
