"""Stand-ins for an agent's sampler and capture backend, for tests about scheduling and the API."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from realworld.agent.capture import CaptureError
from realworld.agent.samples import ResourceSample


class CountingCapture:
    """Writes ``state.txt`` holding a counter; fails while ``fail`` is set."""

    name = "fake"
    reuses_previous = False

    def __init__(self) -> None:
        self.count = 0
        self.fail = False

    def capture(self, out_dir: Path, *, instance_id: str, pid: int | None) -> list[str]:
        if self.fail:
            raise CaptureError("fake: state unreadable")
        self.count += 1
        (out_dir / "state.txt").write_text(f"{instance_id} {self.count}")
        return ["state.txt"]


class SelfSampler:
    """Samples nothing real but lists this test process, so the process list is non-empty."""

    def __init__(self) -> None:
        self.n = 0

    def sample(self) -> ResourceSample:
        self.n += 1
        return ResourceSample(float(self.n), 0.25, 1 << 20, 0.0, 0.0, 0.0, 0.0)

    def processes(self) -> list[psutil.Process]:
        return [psutil.Process(os.getpid())]
