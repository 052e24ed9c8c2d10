# One image for the API and the workers.
#   api:    python -m app                 (JOBS_API_WORKERS=N: N processes)
#   worker: arq workers.WorkerSettings (default queue), arq workers.HighWorkerSettings, ... (one pool per queue)
#           arq-jobs worker --queue default --processes N: N processes of one pool, supervised
#   cli:    arq-jobs --help
# The library (arq_jobs) is installed as the wheel users install; app/ and workers/ are the deployment.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --require-hashes -r /tmp/requirements.lock
COPY pyproject.toml README.md /src/
COPY arq_jobs /src/arq_jobs
RUN /opt/venv/bin/pip install --no-deps /src

FROM python:3.11-slim AS runtime
RUN groupadd --system app && useradd --system --gid app --home-dir /app --no-create-home app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY app ./app
COPY workers ./workers
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    JOBS_API_HOST=0.0.0.0 \
    JOBS_API_PORT=8000
USER app
EXPOSE 8000
CMD ["python", "-m", "app"]
