"""`python -m app`: serve the API with uvicorn on `JOBS_API_HOST`:`JOBS_API_PORT`."""

from __future__ import annotations

from app.main import create_app
from arq_jobs.fastapi import serve


def main() -> None:
    serve(create_app())


if __name__ == "__main__":
    main()
