"""The shop's background tasks: every module here is loaded by `install()` and the worker."""
