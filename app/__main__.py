"""`python -m app`: serve the API with uvicorn on the configured host and port."""

from __future__ import annotations

import uvicorn

from app.main import create_app
from jobcore.config import load_settings
from jobcore.logs import configure_logging


def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        log_config=None,
        access_log=settings.access_log,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
