"""The ``mirrortwin`` command line: run a scenario, compare policies, list and fetch what runs need.

Every mistake a user can make (a bad spec or ``--set``, an unknown scenario or policy, a missing
trace) ends as exactly one line ``mirrortwin: error: ...`` on stderr and exit status 2, never a
traceback: the exceptions raised for them already carry a complete one-line message, and this module
only has to print it. Anything else is a bug and is allowed to show its traceback.

Heavy imports (the twin, the policies, matplotlib) happen after the arguments are parsed, so
``--help`` and usage errors answer at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TextIO

from mirrortwin import control_cli, store_cli
from mirrortwin.agent_cli import register as register_agent
from mirrortwin.config import Settings, load_settings

PROG = "mirrortwin"
USAGE_EXIT = 2


class UsageError(Exception):
    """The command line itself is wrong; ``str()`` is the one-line message."""


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports mistakes as one line instead of usage text plus exit."""

    def error(self, message: str) -> NoReturn:
        """Raise :class:`UsageError` so :func:`main` prints one line and returns status 2."""
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _one_line(message: str) -> str:
    """Join a message's lines so stderr gets exactly one line, keeping every word of it."""
    return " ".join(part.strip() for part in message.strip().splitlines() if part.strip())


def _fail(message: str, *, stream: TextIO | None = None) -> None:
    print(f"{PROG}: error: {_one_line(message)}", file=stream or sys.stderr)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """Turn repeated ``--set KEY=VALUE`` into an ordered mapping (a later key wins).

    Raises:
        ScenarioError: An item is not ``KEY=VALUE``.
    """
    from scenarios.spec import ScenarioError, parse_override

    overrides: dict[str, Any] = {}
    for item in items:
        key, value = parse_override(item)
        if not key:
            raise ScenarioError(f"--set {item!r}: the key before '=' is empty")
        overrides[key] = value
    return overrides


def parse_policy_list(text: str) -> list[str]:
    """Split ``--policies a,b,c``; empty names and repeats are usage errors."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise UsageError("--policies: name at least one policy, e.g. --policies null,threshold")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"--policies: {', '.join(repeated)} given more than once")
    return names


def parse_variant(text: str) -> Any:
    """``LABEL:POLICY[:KEY=VALUE;KEY=VALUE...]`` -> a comparison variant (values read as TOML)."""
    from mirrortwin.wiring import Variant

    parts = text.split(":", 2)
    if len(parts) < 2 or not parts[0].strip() or not parts[1].strip():
        raise UsageError(f"--variant {text!r}: expected LABEL:POLICY[:KEY=VALUE;KEY=VALUE...]")
    sets = [item for item in parts[2].split(";") if item.strip()] if len(parts) == 3 else []
    return Variant(parts[0].strip(), parts[1].strip(), parse_overrides(sets))


@contextmanager
def sim_time_bar(label: str) -> Iterator[Callable[[float, float], None]]:
    """Yield a tqdm bar over simulated hours as a ``progress(now_s, duration_s)`` callback.

    The bar is created on the first call (the runner knows the duration) and only on a terminal
    (``disable=None``), so piped output and CI logs stay clean.
    """
    from tqdm import tqdm

    bar: tqdm | None = None

    def update(now_s: float, duration_s: float) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(
                total=round(duration_s / 3600.0, 3),
                desc=label,
                unit="h",
                disable=None,
                file=sys.stderr,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} h simulated [{elapsed}<{remaining}]",
            )
        bar.update(round(min(now_s, duration_s) / 3600.0, 3) - bar.n)

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


def _print_pairs(pairs: Mapping[str, str], *, out: TextIO) -> None:
    width = max((len(k) for k in pairs), default=0)
    for key, text in pairs.items():
        print(f"{key:<{width}}  {_one_line(text)}", file=out)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """``mirrortwin run``: one scenario, one policy, one results folder."""
    overrides = parse_overrides(args.set)
    from mirrortwin import artefacts, report, wiring

    spec = wiring.resolve_for_policy(args.scenario, policy=args.policy, overrides=overrides)
    with sim_time_bar(f"{spec.name}/{spec.controller.policy}") as progress:
        result = wiring.run_resolved(spec, settings=settings, progress=progress)
    folder = args.out or settings.results_dir / wiring.results_folder_name(spec.name, result.policy, overrides)
    written = artefacts.write_run(
        result, folder, with_plots=not args.no_plots, description=spec.description, overrides=overrides
    )
    print(report.headline_table(result))
    print(f"results: {written.folder}")
    print(f"report:  {written.report}")
    return 0


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    """``mirrortwin compare``: the same scenario and seed under several policies, side by side."""
    from mirrortwin import artefacts, report, wiring

    overrides = parse_overrides(args.set)
    variants = [parse_variant(text) for text in args.variant or []]
    variants += [wiring.Variant(p, p, {}) for p in (parse_policy_list(args.policies) if args.policies else [])]
    labels = [v.label for v in variants]
    repeated = sorted({n for n in labels if labels.count(n) > 1})
    if repeated:
        raise UsageError(f"--policies/--variant: {', '.join(repeated)} given more than once")
    policies = labels
    if args.seeds is not None:
        return _compare_over_seeds(args, settings, variants, overrides)
    prepared = wiring.prepare_comparison(args.scenario, variants=variants, overrides=overrides, settings=settings)
    results = _run_variants(prepared, policies)
    spec = prepared.scenarios[policies[0]]
    default_name = wiring.results_folder_name(spec.name, "compare-" + "-".join(policies), overrides)
    folder = args.out or settings.results_dir / default_name
    written = artefacts.write_comparison(
        results, folder, with_plots=not args.no_plots, description=spec.description, overrides=overrides
    )
    print(f"{spec.name} / seed {spec.seed}")
    print(report.comparison_markdown(report.comparison_frame(results)))
    print(f"results: {written.folder}")
    print(f"report:  {written.report}")
    return 0


def _run_variants(prepared: Any, labels: list[str], suffix: str = "") -> list[Any]:
    """Run every variant of a prepared comparison in order, each with its progress bar."""
    from mirrortwin import wiring

    results = []
    for name in labels:
        with sim_time_bar(f"{prepared.scenarios[name].name}/{name}{suffix}") as progress:
            results.append(wiring.run_prepared(prepared, name, progress=progress))
    return results


def _compare_over_seeds(
    args: argparse.Namespace, settings: Settings, variants: list[Any], overrides: dict[str, Any]
) -> int:
    """``compare --seeds N``: the comparison once per seed, then each metric's mean and 95 % interval.

    Seeds are the scenario's seed and the N-1 after it; each seed draws its own instances, demand and
    failures. Every seed's comparison is written to ``seed-<s>/``; ``seeds.csv`` holds every run's
    values, ``seeds-summary.csv`` and ``seeds.md`` the means and intervals.
    """
    import pandas as pd

    from mirrortwin import artefacts, report, wiring

    if args.seeds < 1:
        raise UsageError(f"--seeds: give a number of seeds >= 1, got {args.seeds}")
    base = wiring.resolve_for_policy(args.scenario, policy=variants[0].policy, overrides=overrides).seed
    labels = [v.label for v in variants]
    frames = {}
    folder = None
    for seed in range(base, base + args.seeds):
        seeded = {**overrides, "seed": seed}
        prepared = wiring.prepare_comparison(args.scenario, variants=variants, overrides=seeded, settings=settings)
        results = _run_variants(prepared, labels, suffix=f"/seed {seed}")
        spec = prepared.scenarios[labels[0]]
        if folder is None:
            name = wiring.results_folder_name(spec.name, "compare-" + "-".join(labels), overrides)
            folder = args.out or settings.results_dir / f"{name}-seeds{args.seeds}"
        artefacts.write_comparison(
            results, folder / f"seed-{seed}", with_plots=not args.no_plots, description=spec.description,
            overrides=seeded,
        )  # fmt: skip
        frames[seed] = report.comparison_frame(results)
    assert folder is not None
    summary = report.seeds_summary(frames)
    pd.concat(frames, names=["seed", "policy"]).to_csv(folder / "seeds.csv")
    summary.to_csv(folder / "seeds-summary.csv")
    table = report.seeds_markdown(summary)
    (folder / "seeds.md").write_text(
        f"# {args.scenario}: {', '.join(labels)} over seeds {base}..{base + args.seeds - 1}\n\n"
        "Mean ± half-width of the 95 % confidence interval (Student's t over the seeds).\n\n" + table + "\n",
        encoding="utf-8",
    )
    print(f"{args.scenario} / seeds {base}..{base + args.seeds - 1} (mean ± 95 % CI)")
    print(table)
    print(f"results: {folder}")
    return 0


def cmd_sweep(args: argparse.Namespace, settings: Settings) -> int:
    """``mirrortwin sweep``: one scenario, one field swept over values; the table and what-if plot."""
    from mirrortwin import plots, sweep, wiring

    values = sweep.parse_values(args.values)
    if not values:
        raise UsageError("--values: give at least one value, e.g. --values 60,300,900")
    overrides = parse_overrides(args.set)
    table, results = sweep.run_sweep(
        args.scenario,
        param=args.param,
        values=values,
        policy=args.policy,
        overrides=overrides,
        settings=settings,
        progress=lambda v: None,
    )
    name = wiring.results_folder_name(results[0].scenario, f"sweep-{args.param}", overrides)
    folder = args.out or settings.results_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "sweep.csv")
    markdown = sweep.sweep_markdown(table)
    (folder / "sweep.md").write_text(markdown + "\n", encoding="utf-8")
    if not args.no_plots:
        title = f"{results[0].scenario} / {results[0].policy}: what-if over {args.param}"
        plots.save(plots.whatif_figure(table, title=title), folder / plots.WHATIF_PLOT)
    print(markdown)
    print(f"results: {folder}")
    return 0


def cmd_scenarios_list(args: argparse.Namespace, settings: Settings) -> int:
    """``mirrortwin scenarios list``: the named scenarios of the catalogue."""
    from scenarios.catalogue import list_scenarios

    _print_pairs(list_scenarios(), out=sys.stdout)
    return 0


def cmd_policies_list(args: argparse.Namespace, settings: Settings) -> int:
    """``mirrortwin policies list``: the policies ``--policy`` accepts."""
    from policies.registry import available_policies

    _print_pairs(available_policies(), out=sys.stdout)
    return 0


def cmd_traces_list(args: argparse.Namespace, settings: Settings) -> int:
    """``mirrortwin traces list``: downloadable trace sets and the folders searched for traces."""
    from scenarios.traces.download import available_trace_sets

    _print_pairs(available_trace_sets(), out=sys.stdout)
    print(f"\ntraces are read from: {', '.join(str(p) for p in settings.trace_roots)}")
    return 0


def cmd_traces_download(args: argparse.Namespace, settings: Settings) -> int:
    """``mirrortwin traces download NAME``: fetch a trace set into the user cache."""
    from scenarios.traces.download import available_trace_sets, download_trace_set

    known = available_trace_sets()
    if args.name not in known:
        raise UsageError(f"unknown trace set {args.name!r}; available: {', '.join(known)}")
    mirror = args.mirror or settings.trace_mirror_url
    path = download_trace_set(args.name, settings.cache_dir, mirror_url=mirror, progress=True)
    print(f"{args.name}: {path}")
    return 0


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    """``mirrortwin validate cloudsim-planetlab``: the twin against CloudSim 3.0.3's reference runs."""
    from mirrortwin.validation import load_reference, to_markdown, validate

    if args.suite != "cloudsim-planetlab":
        raise UsageError(f"unknown validation suite {args.suite!r}; available: cloudsim-planetlab")
    ref_path = args.reference or settings.traces_dir.parent / "reference" / "cloudsim-3.0.3-planetlab.csv"
    reference = load_reference(Path(ref_path))
    days = [d.strip() for d in args.days.split(",")] if args.days else None
    policies = [p.strip() for p in args.policies.split(",")] if args.policies else None

    def show(row: dict[str, object]) -> None:
        print(f"{row['day']} {row['policy']}: {row['status']}", file=sys.stderr)

    maps = args.maps or Path(ref_path).parent / "cloudsim-20110303-steps"
    table = validate(
        reference, settings=settings, days=days, policies=policies, order=args.order, maps=maps, on_row=show
    )
    if table.empty:
        raise UsageError(f"no reference row matches --days/--policies/--order in {ref_path}")
    out = args.out or settings.results_dir / "validate-cloudsim-planetlab"
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "validation.csv", index=False)
    markdown = to_markdown(table)
    (out / "validation.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    print(f"table: {out / 'validation.csv'}")
    failed = int((table["status"] != "ok").sum())
    if failed:
        print(f"{failed} of {len(table)} rows are outside tolerance or unsupported", file=sys.stderr)
        return 1
    return 0


#: Seed of ``mirrortwin failure-model``'s split and models (the figures in docs/failure-prediction.md).
FAILURE_MODEL_SEED = 20190101
FAILURE_MODEL_FILE = "failure-model.joblib"


def cmd_failure_model(args: argparse.Namespace, settings: Settings) -> int:
    """``mirrortwin failure-model``: the failure classifier's held-out metrics on the Backblaze SMART data.

    With ``--train`` (or when no model is saved yet) it trains (seeded), evaluates on held-out
    drives, across drive models and with the date-confounded features, and writes the model,
    ``metrics.md`` and ``metrics.csv``; without, it
    prints the saved model's scores on the same held-out drives (the split depends only on the seed).
    """
    import numpy as np

    from policies.failure_prediction import (
        DEFAULT_FEATURES,
        FailureModelError,
        FailureRiskModel,
        held_out_mask,
        metrics_frame,
        metrics_markdown,
        run_evaluation,
        score_held_out,
    )
    from scenarios.traces.backblaze import load_backblaze

    out = args.out or settings.results_dir / "failure-model"
    artefact = out / FAILURE_MODEL_FILE
    first_model = not args.train and not artefact.is_file()
    last_day = load_backblaze(settings.trace_roots, window="last_day")
    ten_day = load_backblaze(settings.trace_roots, window="last_10_day")
    if first_model:
        print(f"no saved model at {artefact}: training one (seed {args.seed})", file=sys.stderr)
        args.train = True
    rng = np.random.default_rng(args.seed)
    try:
        if args.train:
            evaluation = run_evaluation(last_day, ten_day, rng, progress=lambda line: print(line, file=sys.stderr))
            model, rows = evaluation.model, list(evaluation.rows)
            model.provenance = {"data": "backblaze_smart_2019 last_day raw", "seed": args.seed}
            model.save(artefact)
        else:
            model = FailureRiskModel.load(artefact, features=DEFAULT_FEATURES)
            if model.provenance.get("seed") != args.seed:
                raise UsageError(
                    f"{artefact} was trained with seed {model.provenance.get('seed')}, so seed {args.seed}'s "
                    "held-out drives may include its training drives; pass that --seed or use --train"
                )
            rows = score_held_out(model, last_day, ten_day, held_out_mask(last_day, rng))
    except FailureModelError as exc:
        raise UsageError(str(exc)) from None
    failed, drives = int(last_day["failure"].sum()), len(last_day)
    header = (
        f"Backblaze SMART 2019, last-day rows: {drives} drives, {failed} failed "
        f"(base rate {failed / drives:.2%}); seed {args.seed}; held-out share 30 % of drives\n"
        f"model: {model.candidate.name} on {', '.join(model.features)}; threshold {model.threshold:.3f} "
        f"(max F1 on training folds); out-of-fold PR-AUC by candidate: "
        + ", ".join(f"{k} {v:.3f}" for k, v in model.selection.items())
    )
    markdown = header + "\n\n" + metrics_markdown(rows)
    print(markdown)
    print(f"model:   {artefact}")
    if args.train:  # scoring the saved model again leaves the full table of its training run in place
        metrics_frame(rows).to_csv(out / "metrics.csv", index=False)
        (out / "metrics.md").write_text(markdown + "\n", encoding="utf-8")
        print(f"metrics: {out / 'metrics.md'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser; each sub-command stores its handler in ``func``."""
    parser = _Parser(prog=PROG, description="Digital-twin testbed for adaptive resource mirroring and migration.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run one scenario with one policy and write a results folder")
    run.add_argument("scenario", metavar="SCENARIO", help="catalogue name or path of a scenario .toml")
    run.add_argument("--policy", metavar="NAME", help="policy to run (default: the scenario's controller.policy)")
    _add_common(run)
    run.set_defaults(func=cmd_run)

    compare = commands.add_parser("compare", help="run several policies on the same scenario and seed")
    compare.add_argument("scenario", metavar="SCENARIO", help="catalogue name or path of a scenario .toml")
    which = compare.add_mutually_exclusive_group(required=True)
    which.add_argument("--policies", metavar="A,B,...", help="comma-separated policy names")
    which.add_argument(
        "--variant",
        action="append",
        metavar="LABEL:POLICY[:K=V;K=V]",
        help="a labelled configuration with its own overrides, e.g. no-mirror:null:rma.enabled=false (repeatable)",
    )
    compare.add_argument(
        "--seeds",
        type=int,
        metavar="N",
        help="run the comparison on N seeds (the scenario's and the next ones): mean and 95 %% interval",
    )
    _add_common(compare)
    compare.set_defaults(func=cmd_compare)

    sweep = commands.add_parser("sweep", help="run a scenario once per value of one field; table and what-if plot")
    sweep.add_argument("scenario", metavar="SCENARIO", help="catalogue name or path of a scenario .toml")
    sweep.add_argument(
        "--param", required=True, metavar="KEY", help="dotted field to sweep, e.g. rma.snapshot_interval_s"
    )
    sweep.add_argument("--values", required=True, metavar="V1,V2,...", help="comma-separated values")
    sweep.add_argument("--policy", metavar="NAME", help="policy to run (default: the scenario's controller.policy)")
    _add_common(sweep)
    sweep.set_defaults(func=cmd_sweep)

    scenarios = commands.add_parser("scenarios", help="the scenario catalogue")
    scenarios_sub = scenarios.add_subparsers(dest="action", required=True, metavar="ACTION")
    scenarios_sub.add_parser("list", help="list named scenarios").set_defaults(func=cmd_scenarios_list)

    policies = commands.add_parser("policies", help="the available policies")
    policies_sub = policies.add_subparsers(dest="action", required=True, metavar="ACTION")
    policies_sub.add_parser("list", help="list policies").set_defaults(func=cmd_policies_list)

    traces = commands.add_parser("traces", help="trace sets: list, download")
    traces_sub = traces.add_subparsers(dest="action", required=True, metavar="ACTION")
    traces_sub.add_parser("list", help="list downloadable trace sets").set_defaults(func=cmd_traces_list)
    control_cli.register(commands)
    download = traces_sub.add_parser("download", help="download a trace set into the user cache")
    download.add_argument("name", metavar="NAME", help="trace set name (see 'mirrortwin traces list')")
    download.add_argument("--mirror", metavar="URL", help="base URL of a mirror to download from instead")
    download.set_defaults(func=cmd_traces_download)

    _add_forecast_eval(commands)
    register_agent(commands)

    check = commands.add_parser("validate", help="compare the twin with reference results (cloudsim-planetlab)")
    check.add_argument("suite", metavar="SUITE", help="validation suite: cloudsim-planetlab")
    check.add_argument("--days", metavar="D1,D2", help="PlanetLab days to run (default: every day in the reference)")
    check.add_argument("--policies", metavar="P1,P2", help="reference policies to run, e.g. LR-MMT-1.2,DVFS")
    check.add_argument("--order", default="sorted", help="reference rows of this trace order (default: sorted)")
    check.add_argument("--reference", type=Path, metavar="FILE.csv", help="reference CSV (default: the shared one)")
    check.add_argument(
        "--maps",
        type=Path,
        metavar="DIR",
        help="folder of map_<day>_<order>.csv VM-to-trace lists for --order other than sorted "
        "(default: cloudsim-20110303-steps/ next to the reference CSV)",
    )
    check.add_argument("--out", type=Path, metavar="DIR", help="where to write validation.csv and .md")
    check.set_defaults(func=cmd_validate)

    failure = commands.add_parser(
        "failure-model", help="held-out metrics of the host failure classifier (Backblaze SMART data)"
    )
    failure.add_argument("--train", action="store_true", help="train and evaluate (default: score the saved model)")
    failure.add_argument("--seed", type=int, default=FAILURE_MODEL_SEED, help="split and model seed")
    failure.add_argument(
        "--out", type=Path, metavar="DIR", help="where the model and metrics go (default: results/failure-model)"
    )
    failure.set_defaults(func=cmd_failure_model)
    store_cli.register(commands)
    return parser


def _add_common(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a spec field by dotted path, e.g. controller.params.threshold=0.7 (repeatable)",
    )
    sub.add_argument("--out", type=Path, metavar="DIR", help="results folder (default: results/<name>)")
    sub.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def cmd_forecast_eval(args: argparse.Namespace, settings: Settings) -> int:
    """``mirrortwin forecast-eval``: rolling-origin backtest of the forecasters on real traces."""
    from mirrortwin import forecast_eval as fe

    def names(text: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(n.strip() for n in text.split(",") if n.strip()) if text else default

    try:
        horizons = tuple(int(h) for h in names(args.horizons, ("1", "3", "6", "12")))
    except ValueError:
        raise UsageError(f"--horizons {args.horizons!r}: expected comma-separated integers, e.g. 1,3,6,12") from None
    if args.scenario is not None:
        return _forecast_eval_scenario(args, settings, horizons, names)
    for flag, given in (("--event-origins", args.event_origins), ("--set", args.set)):
        if given is not None:
            raise UsageError(f"{flag}: only with --scenario")
    config = fe.BacktestConfig(
        families=names(args.families, fe.FAMILIES),
        forecasters=names(args.forecasters, fe.FORECASTERS),
        horizons=horizons,
        n_series=args.series,
        n_origins=args.origins,
        history_steps=args.history,
        n_train_series=args.train_series,
        lstm_steps=args.lstm_steps,
        with_exog=not args.no_exog,
        seed=args.seed,
    )
    config.check()
    data = {family: fe.load_family(family, settings) for family in config.families}
    table = fe.run_backtest(config, data, lstm_dir_in=args.load_lstm, lstm_dir_out=args.save_lstm)
    folder = args.out or settings.results_dir / "forecast-eval"
    print(fe.write_results(table, config, folder, with_plot=not args.no_plots))
    print(f"results: {folder}")
    return 0


def _forecast_eval_scenario(
    args: argparse.Namespace,
    settings: Settings,
    horizons: tuple[int, ...],
    names: Callable[[str | None, tuple[str, ...]], tuple[str, ...]],
) -> int:
    """``forecast-eval --scenario NAME``: backtest on a scenario's demand with its declared events."""
    from mirrortwin import forecast_eval_events as fev

    for flag, given in (
        ("--families", args.families),
        ("--save-lstm", args.save_lstm),
        ("--load-lstm", args.load_lstm),
    ):
        if given is not None:
            raise UsageError(f"{flag}: not with --scenario (the scenario names its trace; the LSTM takes no events)")
    config = fev.EventBacktestConfig(
        scenario=args.scenario,
        forecasters=names(args.forecasters, fev.FORECASTERS),
        horizons=horizons,
        n_series=args.series,
        n_origins=args.origins,
        n_event_origins=4 if args.event_origins is None else args.event_origins,
        history_steps=args.history,
        seed=args.seed,
        overrides=parse_overrides(args.set or []),
    )
    config.check()
    data = fev.load_scenario_demand(config, settings)
    table = fev.run_event_backtest(config, data)
    folder = args.out or settings.results_dir / f"forecast-eval-{data.name}"
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "forecast_eval_events.csv", index=False)
    markdown = fev.to_markdown(table, list(config.horizons))
    (folder / "forecast_eval_events.md").write_text(markdown + "\n", encoding="utf-8")
    print(markdown)
    print(f"results: {folder}")
    return 0


def _add_forecast_eval(commands: Any) -> None:
    fc = commands.add_parser("forecast-eval", help="rolling-origin backtest of the forecasters on real traces")
    fc.add_argument("--families", metavar="A,B", help="trace families (default: planetlab,bitbrains,azure)")
    fc.add_argument("--forecasters", metavar="A,B", help="forecasters (default: all)")
    fc.add_argument("--horizons", metavar="H1,H2", help="steps ahead to report (default: 1,3,6,12)")
    fc.add_argument("--series", type=int, default=16, metavar="N", help="test instances per family (default: 16)")
    fc.add_argument("--origins", type=int, default=3, metavar="N", help="forecast origins per family (default: 3)")
    fc.add_argument("--history", type=int, default=576, metavar="STEPS", help="history per fit (default: 576)")
    fc.add_argument("--train-series", type=int, default=100, metavar="N", help="LSTM training instances (default: 100)")
    fc.add_argument("--lstm-steps", type=int, default=150, metavar="N", help="LSTM optimiser steps (default: 150)")
    fc.add_argument("--no-exog", action="store_true", help="skip the runs with calendar features")
    fc.add_argument("--seed", type=int, default=0, help="seed of the instance split and LSTM training (default: 0)")
    fc.add_argument("--save-lstm", type=Path, metavar="DIR", help="retrain: write the trained LSTM artefacts here")
    fc.add_argument("--load-lstm", type=Path, metavar="DIR", help="use LSTM artefacts from DIR instead of training")
    fc.add_argument("--out", type=Path, metavar="DIR", help="results folder (default: results/forecast-eval)")
    fc.add_argument("--no-plots", action="store_true", help="skip the PNG plot")
    fc.add_argument(
        "--scenario",
        metavar="NAME",
        help="backtest on this scenario's demand after event injection, without / with calendar / with "
        "its declared events (e.g. bitbrains-campaign); replaces --families",
    )
    fc.add_argument(
        "--event-origins", type=int, metavar="N", help="with --scenario: extra origins per declared window (default 4)"
    )
    fc.add_argument("--set", action="append", metavar="KEY=VALUE", help="with --scenario: override a scenario field")
    fc.set_defaults(func=cmd_forecast_eval)


def main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 user error).

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).
        settings: Settings to use instead of those read from the environment (tests pass their own).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        _fail(str(exc))
        return USAGE_EXIT
    from mirrortwin.errors import ENVIRONMENT_ERRORS, USER_ERRORS

    try:
        return int(args.func(args, settings or load_settings()))
    except (UsageError, *USER_ERRORS) as exc:
        _fail(str(exc))
        return USAGE_EXIT
    except ENVIRONMENT_ERRORS as exc:
        _fail(str(exc))
        return 1
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except OSError as exc:
        # Disk full, unwritable --out, a download that failed: the environment, not a bug.
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}")
        return 1
