"""Benchmarks against a real Redis and a real worker process."""
