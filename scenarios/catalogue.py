"""The named scenarios shipped with mirrortwin, and how a name or a path becomes a :class:`Scenario`.

Each named scenario is a TOML file in ``scenarios/catalogue/``; the file name (without ``.toml``) is
its name. ``planetlab-YYYYMMDD`` works for any PlanetLab day, not only the one with a file: the
CloudSim setup is identical on every day except the trace folder (and so the VM count), so such
names resolve from the ``planetlab-20110303`` template with ``workload.subset`` set to that day.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scenarios.spec import Scenario, ScenarioError, load_scenario_file

CATALOGUE_DIR = Path(__file__).resolve().parent / "catalogue"
PLANETLAB_TEMPLATE = "planetlab-20110303"
_PLANETLAB_DAY = re.compile(r"^planetlab-(\d{8})$")


def list_scenarios() -> dict[str, str]:
    """Return every catalogue scenario's name and one-line description, sorted by name."""
    out: dict[str, str] = {}
    for path in sorted(CATALOGUE_DIR.glob("*.toml")):
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            raw = {}
        out[path.stem] = str(raw.get("description", ""))
    return out


def scenario_path(name: str) -> Path:
    """Return the catalogue file of ``name`` (the template for ``planetlab-YYYYMMDD`` names).

    Raises:
        ScenarioError: The name is not in the catalogue; the message lists the known names.
    """
    path = CATALOGUE_DIR / f"{name}.toml"
    if path.is_file() and path.parent == CATALOGUE_DIR:
        return path
    if _PLANETLAB_DAY.match(name):
        return CATALOGUE_DIR / f"{PLANETLAB_TEMPLATE}.toml"
    known = ", ".join([*list_scenarios(), "planetlab-YYYYMMDD (any PlanetLab day)"])
    raise ScenarioError(f"unknown scenario {name!r}; known: {known}; or give the path to a .toml file")


def resolve_scenario(name_or_path: str, overrides: Mapping[str, Any] | None = None) -> Scenario:
    """Load a catalogue scenario by name, or a scenario file by path, with ``--set`` overrides.

    Args:
        name_or_path: A catalogue name (``smoke``, ``planetlab-20110306``) or a path to a TOML
            file. Anything ending in ``.toml`` or naming an existing file is treated as a path.
        overrides: Dotted field paths to values (``{"controller.params.threshold": 0.7}``),
            applied after the file is read and before validation, so they are validated too.

    Returns:
        The validated scenario; ``source_file`` is the file it came from.

    Raises:
        ScenarioError: One line naming the file, field and (where found) line, or the known names
            when ``name_or_path`` is neither a file nor a catalogue name.
    """
    candidate = Path(name_or_path)
    if name_or_path.endswith(".toml") or candidate.is_file():
        return load_scenario_file(candidate, overrides)
    path = scenario_path(name_or_path)
    merged: dict[str, Any] = {}
    day = _PLANETLAB_DAY.match(name_or_path)
    if day and path.stem != name_or_path:
        merged = {
            "name": name_or_path,
            "description": f"CloudSim 3.0.3 PlanetLab setup on day {day.group(1)} (one VM per trace file)",
            "workload.subset": day.group(1),
        }
    merged.update(overrides or {})
    return load_scenario_file(path, merged)
