"""Loaders that turn third-party trace formats into one :class:`TraceSet`."""

from scenarios.traces.trace_set import TraceSet

__all__ = ["TraceSet"]
