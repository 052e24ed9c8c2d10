"""The FastAPI app: accepts jobs over HTTP and reports their status."""
