"""Errors raised by trace loading and downloading, each with a one-line message a user can act on.

Bad trace input must never surface as a traceback from pandas or numpy: callers (the CLI, the scenario
runner) print ``str(error)`` and stop. So every message names the file, and the line where one is known,
and for a missing trace it says exactly what to run and where the data comes from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class TraceNotFoundError(Exception):
    """A trace family/subset is in none of the searched folders.

    Attributes:
        trace: ``family/subset`` that was asked for.
        searched: Folders that were looked at, in order.
        download_name: Name to pass to ``mirrortwin traces download``.
        source_url: Public place the data comes from.
    """

    def __init__(self, trace: str, searched: Sequence[Path], download_name: str, source_url: str) -> None:
        self.trace = trace
        self.searched = tuple(searched)
        self.download_name = download_name
        self.source_url = source_url
        where = ", ".join(str(p) for p in self.searched) or "(no folders given)"
        super().__init__(
            f"trace {trace} not found; searched: {where}; "
            f"run `mirrortwin traces download {download_name}` "
            f"(or fetch it by hand from {source_url} into one of those folders)"
        )


class TraceFormatError(Exception):
    """A trace file's content does not match its documented format.

    Attributes:
        path: The offending file.
        line: 1-based line number, or None when the problem is not tied to one line.
        problem: What is wrong, in a few words.
    """

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {problem}")


class TraceDownloadError(Exception):
    """A trace file could not be fetched or failed its checksum; nothing corrupt was kept.

    Attributes:
        url: The URL that failed.
        problem: What went wrong.
    """

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        self.problem = problem
        super().__init__(f"{url}: {problem}")
