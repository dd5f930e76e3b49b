"""Queueing a Celery task by its name.

A task's module imports the services it runs, and those services often queue the next task (a
delivery queues its retry, an execution its verification, the dispatcher the check batches).
Importing the tasks module back from a service would close a circle of imports, so code that
queues work names the task ("apps.alerts.tasks.deliver_notification") the way the beat
schedule does, and the tasks modules stay the only ones that import both sides.
"""

from __future__ import annotations

from importlib import import_module

from celery import Task, current_app


def task(name: str) -> Task:
    """The registered task called `name` (its `apply_async`/`delay` behave as usual, eager mode
    included). A worker registers every app's tasks at start; a web process registers a tasks
    module when something first imports it, so an unknown name imports its module first."""
    registry = current_app.tasks
    if name not in registry:
        import_module(name.rpartition(".")[0])
    return registry[name]
