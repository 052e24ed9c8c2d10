"""A small shop: an existing FastAPI app that sends its order receipts as background jobs."""
