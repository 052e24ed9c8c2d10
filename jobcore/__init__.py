"""The shared core: settings, task registry, job states, serializer and Redis key layout.

Both `app` (the FastAPI side) and `workers` (the ARQ side) import from here; nothing here imports
FastAPI routes or worker start-up code.
"""
