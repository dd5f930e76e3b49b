"""Seams: how a lower app tells higher apps that something happened, without importing them.

An app that has news declares a `Seam` in its own `events` module (monitors: status changes
and folded results; incidents: incident events; plans: plan changes and usage counts) and
sends on it; the apps that must react are connected to it in one place, healthorch/wiring.py,
so "who hears what" is read in one file. Listeners are called in the order they were
connected, synchronously, inside the sender's transaction: a listener may write its own rows
atomically with the news and must defer side effects (tasks, network) with
`transaction.on_commit`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Listener = Callable[..., Any]


class Seam:
    """A named list of listeners, called with keyword arguments only."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._listeners: list[Listener] = []

    def __repr__(self) -> str:
        return f"<Seam {self.name}: {len(self._listeners)} listener(s)>"

    def connect(self, listener: Listener) -> Listener:
        """Add a listener (once: connecting it again changes nothing)."""
        if listener not in self._listeners:
            self._listeners.append(listener)
        return listener

    def disconnect(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    @property
    def listeners(self) -> tuple[Listener, ...]:
        return tuple(self._listeners)

    def send(self, **kwargs: Any) -> list[Any]:
        """Call every listener in order; their answers, in the same order."""
        return [listener(**kwargs) for listener in self._listeners]

    @contextmanager
    def muted(self) -> Iterator[None]:
        """No listener hears anything inside the block (tests and benchmarks that measure the
        sender alone)."""
        saved, self._listeners = self._listeners, []
        try:
            yield
        finally:
            self._listeners = saved
