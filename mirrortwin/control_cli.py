"""``mirrortwin control CONFIG``: the live controller against a real fleet, on the wall clock.

It runs the twin's own policy and controller classes against IVNs, Mirror Stores, HAProxy, instances
and their agents (built by :mod:`mirrortwin.live_fleet`).
"""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    """Add the ``control`` sub-command."""
    control = commands.add_parser(
        "control", help="run the live controller (same policies as the twin) against a real fleet"
    )
    control.add_argument("config", type=Path, help="live configuration (TOML), see docs/live.md")
    control.add_argument("--workdir", type=Path, help="where data, logs and results go (default: the config's)")
    control.add_argument("--duration-s", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    control.set_defaults(func=cmd_control)


def cmd_control(args: argparse.Namespace, settings: object) -> int:
    """Bring the fleet up, run the controller until told to stop, write results, tear everything down."""
    from mirrortwin.live_config import load_live_config

    config = load_live_config(args.config)  # LiveConfigError: one line, exit 2
    if args.duration_s is not None and not args.duration_s > 0:
        from mirrortwin.cli import UsageError

        raise UsageError(f"--duration-s: must be > 0, got {args.duration_s}")
    from mirrortwin.live_fleet import LiveFleet

    with LiveFleet(config, args.workdir) as fleet:
        previous = {s: signal.signal(s, lambda *_: fleet.stop()) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            print(f"live fleet up: {len(config.instances)} instance(s) in {len(config.ivns)} IVN(s); "
                  f"policy {config.controller.policy} ({type(fleet.policy).__qualname__}); HAProxy stats at "
                  f"{fleet.lb.stats_url if fleet.lb else '-'}", flush=True)
            fleet.run(duration_s=args.duration_s)
            summary = fleet.write_results()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
    outcomes: dict[str, int] = {}
    for row in summary["migrations"]:
        outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + 1
    print(f"{summary['ticks']} control ticks; migrations: {json.dumps(outcomes) if outcomes else 'none'}; "
          f"results in {fleet.results_dir}")
    return 0
