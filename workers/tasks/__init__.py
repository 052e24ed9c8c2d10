"""Task modules, one per domain. Every `@task` defined in a module here is registered: adding a task
is adding (or editing) one file in this package."""

from jobcore.registry import TaskRegistry

registry = TaskRegistry.discover(__name__)
