"""Configuration read from the environment: the only module that looks at ``os.environ``.

Everything else receives paths and settings as arguments, so tests and library users can pass their
own without touching the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Resolved settings.

    Attributes:
        traces_dir: Shared trace folder (``MIRRORTWIN_TRACES``, default ``../shared/traces``).
        cache_dir: Per-user download cache (``MIRRORTWIN_CACHE``, default ``~/.cache/mirrortwin``).
        trace_mirror_url: Base URL of a mirror to download traces from instead of their public
            sources (``MIRRORTWIN_TRACE_MIRROR``); used by tests and by sites with a local mirror.
        results_dir: Where runs write their results (``MIRRORTWIN_RESULTS``, default ``results``).
        ci: True when running under CI (``CI=true``).
    """

    traces_dir: Path
    cache_dir: Path
    trace_mirror_url: str | None
    results_dir: Path
    ci: bool

    @property
    def trace_roots(self) -> tuple[Path, ...]:
        """Folders searched for traces, in order: the shared folder, then the download cache."""
        return (self.traces_dir, self.cache_dir / "traces")


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``environ`` (default: the process environment)."""
    env = dict(os.environ) if environ is None else environ
    default_traces = (Path.cwd() / ".." / "shared" / "traces").resolve()
    if not default_traces.exists():
        default_traces = (REPO_ROOT / ".." / "shared" / "traces").resolve()
    xdg = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Settings(
        traces_dir=Path(env.get("MIRRORTWIN_TRACES") or default_traces).expanduser(),
        cache_dir=Path(env.get("MIRRORTWIN_CACHE") or Path(xdg) / "mirrortwin").expanduser(),
        trace_mirror_url=env.get("MIRRORTWIN_TRACE_MIRROR") or None,
        results_dir=Path(env.get("MIRRORTWIN_RESULTS") or "results"),
        ci=env.get("CI", "").lower() in ("1", "true", "yes"),
    )
