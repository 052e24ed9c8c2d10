# One image for the API and the workers.
#   api:    python -m app
#   worker: arq workers.WorkerSettings (default queue), arq workers.HighWorkerSettings, ... (one pool per queue)
#   cli:    python -m cli --help
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --require-hashes -r /tmp/requirements.lock

FROM python:3.11-slim AS runtime
RUN groupadd --system app && useradd --system --gid app --home-dir /app --no-create-home app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY jobcore ./jobcore
COPY app ./app
COPY workers ./workers
COPY cli ./cli
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    JOBS_API_HOST=0.0.0.0 \
    JOBS_API_PORT=8000
USER app
EXPOSE 8000
CMD ["python", "-m", "app"]
