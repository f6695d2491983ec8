"""The four trace families, where each lives under a traces root, and one entry point to load any.

Scenarios name a trace as (family, subset) and get a :class:`TraceSet` without knowing file formats.
Roots are searched in order (typically the shared folder, then the download cache), with the same
layout as ``../shared/traces``:

========== ============================== =========================== ===================
family     folder under a root            subset                      default subset
========== ============================== =========================== ===================
planetlab  ``planetlab/<day>/``            day folder name             ``20110303``
bitbrains  ``bitbrains/rnd/<month>/``      ``rnd/<month>``             ``rnd/2013-8``
azure      ``azure_v1_sample/<stem>.csv.gz`` file stem                 ``microsoft_avg_100``
alibaba    ``alibaba2018/machine_usage.csv.gz`` ``machine_usage``      ``machine_usage``
========== ============================== =========================== ===================
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scenarios.traces.alibaba import load_alibaba_machine_usage
from scenarios.traces.azure import DEFAULT_SUBSET as AZURE_DEFAULT
from scenarios.traces.azure import load_azure_v1
from scenarios.traces.bitbrains import load_bitbrains
from scenarios.traces.errors import TraceNotFoundError
from scenarios.traces.planetlab import load_planetlab_day
from scenarios.traces.sources import PLANETLAB_DAYS, source_for
from scenarios.traces.trace_set import TraceSet

FAMILIES: tuple[str, ...] = ("planetlab", "bitbrains", "azure", "alibaba")
DEFAULT_SUBSETS: dict[str, str] = {
    "planetlab": PLANETLAB_DAYS[0],
    "bitbrains": "rnd/2013-8",
    "azure": AZURE_DEFAULT,
    "alibaba": "machine_usage",
}


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown trace family {family!r}; expected one of {', '.join(FAMILIES)}")


def _candidate(family: str, subset: str, root: Path) -> Path:
    """Where ``family``/``subset`` would be under ``root`` (a folder, or a file for azure/alibaba)."""
    if family == "planetlab":
        return root / "planetlab" / subset
    if family == "bitbrains":
        return root / "bitbrains" / subset
    if family == "azure":
        return root / "azure_v1_sample" / f"{subset}.csv.gz"
    return root / "alibaba2018" / f"{subset}.csv.gz"


def _exists(family: str, path: Path) -> bool:
    if family in ("planetlab", "bitbrains"):
        return path.is_dir() and any(path.iterdir())
    return path.is_file()


def find_trace(family: str, subset: str | None, roots: Sequence[Path]) -> Path:
    """First existing location of ``family``/``subset`` among ``roots``.

    Raises:
        ValueError: Unknown family, or a subset with path separators where none are allowed.
        TraceNotFoundError: In none of the roots; the message says what to download and from where.
    """
    _check_family(family)
    sub = subset or DEFAULT_SUBSETS[family]
    if ".." in Path(sub).parts or Path(sub).is_absolute():
        raise ValueError(f"trace subset {sub!r} must be a plain name, not a path")
    if family == "alibaba" and sub != "machine_usage":
        raise ValueError(f"alibaba subset {sub!r} is not loadable; only 'machine_usage' is a usage trace")
    candidates = [_candidate(family, sub, Path(r)) for r in roots]
    for path in candidates:
        if _exists(family, path):
            return path
    src = source_for(family, sub)
    raise TraceNotFoundError(f"{family}/{sub}", candidates, src.name, src.source_url)


def load_trace(
    family: str,
    subset: str | None,
    roots: Sequence[Path],
    *,
    step_s: float | None = None,
    cache_dir: Path | None = None,
) -> TraceSet:
    """Load a trace by family and subset from the first root that has it.

    Args:
        family: ``planetlab``, ``bitbrains``, ``azure`` or ``alibaba``.
        subset: See the module table; None picks the family's default.
        roots: Trace roots searched in order.
        step_s: Grid step; None keeps the family's native/default step (300 s; 60 s for alibaba).
        cache_dir: Parsed-data cache for the slow families (bitbrains); None disables it.

    Raises:
        ValueError: Unknown family.
        TraceNotFoundError: No root holds the trace.
        TraceFormatError: The files are malformed.
    """
    path = find_trace(family, subset, roots)
    if family == "planetlab":
        return load_planetlab_day(path, step_s=step_s)
    if family == "bitbrains":
        return load_bitbrains(path, step_s=step_s, cache_dir=cache_dir)
    if family == "azure":
        return load_azure_v1(path, step_s=step_s)
    return load_alibaba_machine_usage(path, step_s=step_s)


def list_subsets(family: str, roots: Sequence[Path]) -> list[str]:
    """Subsets of ``family`` present in any of ``roots`` (sorted, without duplicates).

    Raises:
        ValueError: Unknown family.
    """
    _check_family(family)
    found: set[str] = set()
    for root in map(Path, roots):
        if family == "planetlab":
            base = root / "planetlab"
            if base.is_dir():
                found.update(p.name for p in base.iterdir() if _exists(family, p))
        elif family == "bitbrains":
            base = root / "bitbrains" / "rnd"
            if base.is_dir():
                found.update(f"rnd/{p.name}" for p in base.iterdir() if _exists(family, p))
        else:
            folder = root / ("azure_v1_sample" if family == "azure" else "alibaba2018")
            if folder.is_dir():
                stems = {p.name.removesuffix(".csv.gz") for p in folder.glob("*.csv.gz")}
                found.update(stems if family == "azure" else stems & {"machine_usage"})
    return sorted(found)
