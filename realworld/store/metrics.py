"""Prometheus metrics of one Mirror Store, in their own registry (several stores can share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class StoreMetrics:
    """Counters the store updates; exposed on ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.ingested_bytes = Counter(
            "mirrorstore_ingested_bytes", "Compressed chunk bytes received in uploads", registry=self.registry
        )
        self.stored_bytes = Counter(
            "mirrorstore_stored_bytes", "Compressed chunk bytes newly written", registry=self.registry
        )
        self.chunks_stored = Counter("mirrorstore_chunks_stored", "Chunks newly written", registry=self.registry)
        self.chunks_deduplicated = Counter(
            "mirrorstore_chunks_deduplicated",
            "Chunks already held: reported present by a missing-check or re-uploaded",
            registry=self.registry,
        )
        self.ingest_seconds = Counter(
            "mirrorstore_ingest_seconds", "Time spent verifying and writing uploads", registry=self.registry
        )
        self.commits = Counter("mirrorstore_commits", "Snapshots committed", registry=self.registry)
        self.restores = Counter("mirrorstore_restores", "Restore streams started", registry=self.registry)
        self.restore_bytes = Counter(
            "mirrorstore_restore_bytes", "Uncompressed bytes verified and streamed by restores", registry=self.registry
        )
        self.corrupt_chunks = Counter(
            "mirrorstore_corrupt_chunks", "Chunks found missing or corrupt at restore", registry=self.registry
        )
        self.gc_runs = Counter("mirrorstore_gc_runs", "Garbage collections", registry=self.registry)
        self.gc_deleted_chunks = Counter(
            "mirrorstore_gc_deleted_chunks", "Chunks removed by garbage collection", registry=self.registry
        )
        self.snapshots_expired = Counter(
            "mirrorstore_snapshots_expired", "Snapshots removed by retention", registry=self.registry
        )
