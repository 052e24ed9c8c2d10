"""`python -m app`: serve the API with uvicorn on `JOBS_API_HOST`:`JOBS_API_PORT`, in
`JOBS_API_WORKERS` processes (each makes the app with `app.main:create_app`)."""

from __future__ import annotations

from arq_jobs.fastapi import serve


def main() -> None:
    serve("app.main:create_app", factory=True)


if __name__ == "__main__":
    main()
