"""Logging set-up shared by the API and the workers."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """Send logs to stderr at `level` (replaces whatever a launcher configured before)."""
    logging.basicConfig(level=level, format=FORMAT, force=True)
