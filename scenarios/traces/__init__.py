"""Loaders that turn third-party trace formats into one :class:`TraceSet`.

``load_trace(family, subset, roots)`` is the entry point scenarios use; ``download_trace_set`` fetches a
missing trace into the cache with the same layout as the shared folder.
"""

from scenarios.traces.download import available_trace_sets, download_trace_set
from scenarios.traces.errors import TraceDownloadError, TraceFormatError, TraceNotFoundError
from scenarios.traces.families import FAMILIES, list_subsets, load_trace
from scenarios.traces.trace_set import TraceSet

__all__ = [
    "FAMILIES",
    "TraceDownloadError",
    "TraceFormatError",
    "TraceNotFoundError",
    "TraceSet",
    "available_trace_sets",
    "download_trace_set",
    "list_subsets",
    "load_trace",
]
