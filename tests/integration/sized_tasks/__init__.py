"""A task with a request body limit of its own, loaded only by the API of tests/integration/test_load_limits.py."""
