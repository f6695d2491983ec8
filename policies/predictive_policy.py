"""Predictive migration: relieve hosts *before* they overload, from a demand forecast of every instance.

The threshold policy reacts to a host that is already over its threshold; by then the instances on
it have been short of CPU for a control interval and the migration itself (tens of seconds of
pre-copy on a busy host) makes it worse. This policy forecasts each instance's CPU demand ``horizon``
control steps ahead with one of the forecasters of :mod:`policies.forecasting` (ARIMA, the LSTM, ...),
batched over the whole fleet, and acts on the *probability* that a host overloads within that horizon.

One round:

1. **Fallback.** While the typical (median) instance has fewer than ``min_history`` observed samples
   the forecaster has nothing to stand on; the round is exactly the threshold policy's (same
   threshold, rules and consolidation), delegated to a :class:`~policies.threshold_policy.ThresholdPolicy`.
2. **Forecast.** The forecaster is estimated (``fit``) on the fleet's history once every
   ``refit_every`` rounds (ARIMA estimation is tens of milliseconds per series) and only conditioned on
   the newest history (``observe``) in between; it is refitted at once when the set of instances changes.
3. **Host risk.** A host's demand at step ``k`` is the sum of its instances' forecast means; its
   variance is the sum of their variances, read off the prediction intervals as if the forecast
   errors were normal and *independent between instances* (an approximation: co-located instances
   that share a trend are positively correlated, so the spread is under-stated). The overload
   probability at step ``k`` is ``P(demand_k > threshold x capacity)``; the host's risk is the largest
   over the horizon (errors at successive steps are strongly correlated, so the maximum is closer to
   the probability of "at some step" than a product of independent steps would be).
4. **Relief.** Hosts with risk above ``risk_threshold`` shed instances, greedily, by risk reduction
   per unit of migration cost, until the risk is back at or under ``risk_threshold``. Risk reduction
   is measured on the host's ``1 - risk_threshold`` demand quantile (the quantity that has to fall
   under ``threshold x capacity``), which, unlike the probability itself, does not saturate at 0 or 1.
   The cost is the instance's memory, discounted when a fresh mirror snapshot of it exists (a
   migration that restores from a recent mirror ships only what changed since): ``ram x (1 -
   mirror_discount x exp(-age / mirror_fresh_s))``.
5. **Placement** reuses the threshold policy's compiled kernels (:mod:`policies.placement_kernels`) on a
   *predicted* view: every instance's request is its forecast peak over the horizon, so a target is
   accepted only if its predicted load stays at or under the threshold. Risky hosts are never targets.
6. **Consolidation** (with ``underload_threshold``) is the threshold policy's all-or-nothing
   evacuation on the predicted view, except that hosts whose predicted load rises above their current
   load are not evacuated (their instances would soon need the room).

**Declared events.** When the fleet view carries a declared schedule (maintenance windows, campaigns,
seasonal peaks: only what the operator announced, never their real effect), the forecast takes it into
account (``declared_events``): ``"exog"`` feeds it to forecasters that accept exogenous input (ARIMA) as
one column per event kind over the history *and* the horizon, with instances grouped by the events that
concern them (one fitted forecaster per group); ``"scale"`` divides the history by the declared
multiplier and multiplies the forecast by it (any forecaster); ``"ignore"`` does neither. Calendar
features (``calendar``) are optional and off by default: on the Bitbrains backtest they did not help,
and the controller's short history covers no full day, in which case no calendar column is added.

Optionally (``snapshot_interval_risky_s`` with ``snapshot_interval_s``) instances on hosts whose risk
reaches ``snapshot_risk`` are mirrored more often, so that the instances likely to move have fresh
mirrors; the plan carries the changes and the controller applies them through the Mirror Store port.

The policy reads only the :class:`~policies.fleet.FleetSnapshot`: it runs unchanged in the twin and
live. It draws no random numbers (the forecasters it uses are deterministic once trained).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from policies import placement_kernels
from policies.errors import PolicyConfigError
from policies.event_inputs import ExogGroup, declared_scaling, deflate, exog_groups, inflate
from policies.fleet import BoolArray, FleetSnapshot, FloatArray, IntArray, power_at
from policies.forecasting import Forecast, Forecaster, make_forecaster, z_value
from policies.records import MigrationPlan, Move, MoveReason, RiskAssessment
from policies.target_selection import TARGET_SELECTIONS
from policies.threshold_policy import ThresholdPolicy

DEFAULT_MIN_HISTORY = 12
"""Samples needed before forecasting when the forecaster states no minimum of its own (an hour at 5 min)."""

EVENT_MODES = ("exog", "scale", "ignore")
"""How the policy uses a declared schedule (see the module docstring)."""

INTERVAL_LEVEL = 0.95
"""Level of the prediction interval the forecast spread is read from (any level gives the same sigma)."""


class PredictivePolicy:
    """Migrate off hosts whose forecast overload probability is high, before they overload.

    Args:
        forecaster: Name of the forecaster (see :func:`policies.forecasting.available_forecasters`).
        forecaster_params: Keyword parameters of the forecaster (e.g. ``{"order": [2, 0, 1]}``).
        artefact: Path of a trained LSTM (required by, and only accepted for, ``forecaster = "lstm"``).
        horizon: Control steps ahead the risk covers; should span a migration's duration.
        refit_every: Rounds between estimations of the forecaster; ``observe`` in between.
        min_history: Observed samples the median instance needs before the policy forecasts; until
            then it is the threshold policy. ``None``: the forecaster's ``min_obs`` if it has one,
            else :data:`DEFAULT_MIN_HISTORY`. Larger than the controller's ``history_len`` means
            "always the threshold policy".
        risk_threshold: Overload probability in (0, 1) above which a host is relieved.
        threshold: Utilisation that counts as overload, in (0, 1]; also every target's predicted limit.
        underload_threshold: Predicted utilisation under which a host is evacuated; ``None``: no
            consolidation.
        target_selection: Target rule (as for the threshold policy).
        instance_selection: Instance rule of the threshold-policy fallback only.
        allow_cross_ivn: Whether an instance that fits nowhere in its IVN may go to another.
        mirror_fresh_s: Age (s) over which a mirror's discount on migration cost decays by ``e``.
        mirror_discount: Largest fraction of the memory cost a fresh mirror saves, in [0, 1).
        snapshot_interval_s: Normal snapshot interval (s), restored when an instance's risk drops;
            needed with ``snapshot_interval_risky_s``.
        snapshot_interval_risky_s: Snapshot interval (s) for instances on hosts at risk; ``None``:
            the policy does not touch snapshot intervals.
        snapshot_risk: Host risk from which its instances get the risky snapshot interval.
        declared_events: How the declared schedule enters the forecast: ``"exog"`` (as regressors,
            for forecasters that take exogenous input; others ignore it), ``"scale"`` (history
            divided and forecast multiplied by the declared multiplier, any forecaster) or
            ``"ignore"``.
        calendar: Also feed hour-of-day / day-of-week columns (the cycles the history covers) to
            forecasters that take exogenous input.

    Raises:
        PolicyConfigError: A parameter is invalid; the message names it.
    """

    name = "predictive"

    def __init__(
        self,
        forecaster: str = "arima",
        forecaster_params: Mapping[str, Any] | None = None,
        artefact: str | None = None,
        horizon: int = 2,
        refit_every: int = 12,
        min_history: int | None = None,
        risk_threshold: float = 0.5,
        threshold: float = 0.8,
        underload_threshold: float | None = None,
        target_selection: str = "power_aware_best_fit",
        instance_selection: str = "minimum_migration_time",
        allow_cross_ivn: bool = True,
        mirror_fresh_s: float = 600.0,
        mirror_discount: float = 0.9,
        snapshot_interval_s: float | None = None,
        snapshot_interval_risky_s: float | None = None,
        snapshot_risk: float = 0.2,
        declared_events: str = "exog",
        calendar: bool = False,
    ) -> None:
        self.horizon = _positive_int("horizon", horizon)
        self.refit_every = _positive_int("refit_every", refit_every)
        self.risk_threshold = _probability("risk_threshold", risk_threshold)
        self.snapshot_risk = _probability("snapshot_risk", snapshot_risk)
        self.mirror_fresh_s = _positive("mirror_fresh_s", mirror_fresh_s)
        if isinstance(mirror_discount, bool) or not isinstance(mirror_discount, int | float):
            raise PolicyConfigError("mirror_discount", f"must be a number in [0, 1), got {mirror_discount!r}")
        if not 0.0 <= mirror_discount < 1.0:
            raise PolicyConfigError("mirror_discount", f"must be in [0, 1), got {mirror_discount!r}")
        self.mirror_discount = float(mirror_discount)
        if (snapshot_interval_risky_s is None) != (snapshot_interval_s is None):
            raise PolicyConfigError(
                "snapshot_interval_risky_s",
                "give both snapshot_interval_s and snapshot_interval_risky_s, or neither",
            )
        self.snapshot_interval_s = (
            None if snapshot_interval_s is None else _positive("snapshot_interval_s", snapshot_interval_s)
        )
        self.snapshot_interval_risky_s = (
            None
            if snapshot_interval_risky_s is None
            else _positive("snapshot_interval_risky_s", snapshot_interval_risky_s)
        )
        # The fallback validates threshold, underload_threshold, the rules and allow_cross_ivn.
        self.fallback = ThresholdPolicy(
            threshold=threshold,
            target_selection=target_selection,
            instance_selection=instance_selection,
            underload_threshold=underload_threshold,
            allow_cross_ivn=allow_cross_ivn,
        )
        self.threshold = self.fallback.threshold
        self.underload_threshold = self.fallback.underload_threshold
        self.allow_cross_ivn = allow_cross_ivn
        self._rule = TARGET_SELECTIONS[target_selection]().kernel_id
        if declared_events not in EVENT_MODES:
            raise PolicyConfigError(
                "declared_events", f"must be one of {', '.join(EVENT_MODES)}, got {declared_events!r}"
            )
        if not isinstance(calendar, bool):
            raise PolicyConfigError("calendar", f"must be true or false, got {calendar!r}")
        self.declared_events = declared_events
        self.calendar = calendar
        self.forecaster_name = forecaster
        self._forecaster_args = (forecaster, forecaster_params, artefact, self.horizon)
        self.forecaster = _build_forecaster(*self._forecaster_args)
        # An LSTM takes exactly the inputs it was trained with (none, see _build_forecaster).
        self._takes_exog = bool(getattr(self.forecaster, "uses_exog", False)) and not hasattr(self.forecaster, "model")
        self._group_forecasters: dict[tuple[int, ...], Forecaster] = {}
        self._group_keys: tuple[tuple[int, ...], ...] = ()
        if min_history is None:
            min_obs = getattr(self.forecaster, "min_obs", None)
            min_history = int(min_obs) if isinstance(min_obs, int) else DEFAULT_MIN_HISTORY
        self.min_history = _positive_int("min_history", min_history)
        self._fitted_ids: tuple[str, ...] | None = None
        self._rounds_since_fit = 0
        self._risky_mirrored: set[str] = set()
        self.fits = 0
        """Number of estimations so far (for reports and tests)."""

    # ------------------------------------------------------------------ the round

    def decide(self, fleet: FleetSnapshot) -> MigrationPlan:
        """Forecast, assess every host's overload risk, relieve risky hosts, optionally consolidate."""
        if history_steps(fleet.instance_cpu_history, fleet.instance_host) < self.min_history:
            return self.fallback.decide(fleet)
        demand, variance = self._forecast(fleet)
        placed = fleet.instance_host >= 0
        host_mean = _per_host(fleet, demand, placed)
        host_sd = np.sqrt(_per_host(fleet, variance, placed))
        limit = self.threshold * fleet.host_cpu_capacity_mips
        risk = overload_probability(host_mean, host_sd, limit)
        risk[~fleet.host_available] = 0.0
        risky = fleet.host_available & (risk > self.risk_threshold)

        hosts, instances, rows = placement_kernels.fleet_arrays(fleet)
        peak = demand.max(axis=1)
        # The kernels work on one request per instance: its forecast peak over the horizon.
        instances = instances._replace(request_mips=peak, per_pe_mips=peak / instances.pes)
        placement_kernels.load_hosts(hosts, instances, self.threshold)
        predicted_util = hosts.load_mips / hosts.capacity_mips
        targets = fleet.host_available & ~risky
        received = np.zeros(fleet.n_hosts, dtype=np.bool_)
        n_moves = np.int64(0)
        if risky.any():
            evicted = self._evict(fleet, hosts, instances, risky, demand, variance, host_mean, host_sd, limit)
            if evicted.size:
                cross_ivn = self.allow_cross_ivn and instances.allowed_ivns.shape[1] > 1
                n_moves = placement_kernels.place_evicted(
                    hosts, instances, evicted, targets, cross_ivn, self._rule, predicted_util, received, rows, n_moves
                )
        if self.underload_threshold is not None:
            candidates = placement_kernels.underload_candidates(
                hosts, instances, risky, received, self.underload_threshold
            )
            rising = host_mean.max(axis=1) > fleet.host_request_mips()
            candidates = np.ascontiguousarray(candidates[~rising[candidates]])
            active = targets & (hosts.load_mips / hosts.capacity_mips > 0.0)
            n_moves = placement_kernels.evacuate_underloaded(
                hosts, instances, candidates, active, self._rule, predicted_util, received, rows, n_moves
            )
        moves = [
            self._move(fleet, inst, source, target, reason, float(risk[source]), util)
            for inst, source, target, reason, util in zip(
                rows.instance[:n_moves].tolist(),
                rows.source[:n_moves].tolist(),
                rows.target[:n_moves].tolist(),
                rows.reason[:n_moves].tolist(),
                rows.source_util[:n_moves].tolist(),
                strict=True,
            )
        ]
        assessments = {move.instance_id: move.risk for move in moves if move.risk is not None}
        return MigrationPlan(
            moves=tuple(moves), snapshot_intervals_s=self._snapshot_changes(fleet, risk), assessments=assessments
        )

    # ------------------------------------------------------------------ forecasting

    def _forecast(self, fleet: FleetSnapshot) -> tuple[FloatArray, FloatArray]:
        """Per instance and horizon step, forecast CPU demand (MIPS) and its variance (MIPS^2).

        Estimates the forecaster every ``refit_every`` rounds (and whenever the instance set or the
        grouping by declared events changed), conditions it on the newest history otherwise.
        Instances without any forecast (never observed) keep their current request with no spread.
        """
        forecast = self.forecast_utilisation(fleet)
        capacity = fleet.instance_cpu_capacity_mips[:, None]
        sigma = (forecast.upper - forecast.lower) / (2.0 * z_value(INTERVAL_LEVEL))
        known = np.isfinite(forecast.mean) & np.isfinite(sigma)
        current = np.broadcast_to(fleet.instance_cpu_request_mips[:, None], forecast.mean.shape)
        # Utilisation is a fraction of the instance's capacity: an instance cannot ask for more.
        demand = np.where(known, np.clip(forecast.mean, 0.0, 1.0) * capacity, current)
        variance = np.where(known, (np.maximum(sigma, 0.0) * capacity) ** 2, 0.0)
        return demand, variance

    def forecast_utilisation(self, fleet: FleetSnapshot) -> Forecast:
        """The utilisation forecast of every instance ``horizon`` steps ahead, declared events included.

        This is the policy's whole use of the declared schedule, exposed so that a test can check
        what reaches the forecasters.
        """
        history = fleet.instance_cpu_history
        n_history = history.shape[1]
        events = fleet.declared_events if fleet.history_step_s is not None else ()
        use_events = self.declared_events != "ignore" and bool(events)
        grid = {"now_s": fleet.now_s, "step_s": fleet.history_step_s or 0.0, "n_history": n_history}
        future = None
        if use_events and self.declared_events == "scale":
            past, future = declared_scaling(events, fleet.instance_ids, horizon=self.horizon, **grid)
            history = deflate(history, past)
        wants_exog = self._takes_exog and fleet.history_step_s is not None
        wants_exog = wants_exog and ((use_events and self.declared_events == "exog") or self.calendar)
        if wants_exog:
            groups = exog_groups(
                events if use_events and self.declared_events == "exog" else (),
                fleet.instance_ids,
                horizon=self.horizon,
                calendar=self.calendar,
                **grid,
            )
        else:
            groups = []
        keys = tuple(g.key for g in groups)
        refit = (
            self._fitted_ids != fleet.instance_ids
            or self._rounds_since_fit >= self.refit_every
            or keys != self._group_keys
        )
        if refit:
            self._fitted_ids = fleet.instance_ids
            self._group_keys = keys
            self._rounds_since_fit = 0
            self.fits += 1
        self._rounds_since_fit += 1
        if not groups:
            (self.forecaster.fit if refit else self.forecaster.observe)(history)
            forecast = self.forecaster.forecast(self.horizon, INTERVAL_LEVEL)
        else:
            forecast = self._forecast_groups(history, groups, refit)
        return inflate(forecast, future) if future is not None else forecast

    def _forecast_groups(self, history: FloatArray, groups: list[ExogGroup], refit: bool) -> Forecast:
        """One forecaster per group of instances sharing exogenous inputs; results put back in row order."""
        shape = (history.shape[0], self.horizon)
        mean, lower, upper = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
        if refit:
            self._group_forecasters = {
                g.key: self.forecaster if i == 0 else _build_forecaster(*self._forecaster_args)
                for i, g in enumerate(groups)
            }
        for group in groups:
            forecaster = self._group_forecasters[group.key]
            rows = history[group.rows]
            (forecaster.fit if refit else forecaster.observe)(rows, group.exog)
            part = forecaster.forecast(self.horizon, INTERVAL_LEVEL)
            mean[group.rows], lower[group.rows], upper[group.rows] = part.mean, part.lower, part.upper
        return Forecast(mean, lower, upper, INTERVAL_LEVEL)

    # ------------------------------------------------------------------ relief

    def _evict(
        self,
        fleet: FleetSnapshot,
        hosts: placement_kernels.Hosts,
        instances: placement_kernels.Instances,
        risky: BoolArray,
        demand: FloatArray,
        variance: FloatArray,
        host_mean: FloatArray,
        host_sd: FloatArray,
        limit: FloatArray,
    ) -> IntArray:
        """Choose who leaves each risky host and take them off its working state.

        Greedy per host: the instance with the largest reduction of the host's ``1 - risk_threshold``
        demand quantile (worst horizon step) per unit of migration cost leaves, until that quantile
        is at or under the limit (risk at or under ``risk_threshold``) or nothing helps. Returns the
        evicted instances by decreasing predicted request, the order they are placed in.
        """
        z = float(ndtri(1.0 - self.risk_threshold))
        cost = self.migration_cost(fleet)
        movable = (fleet.instance_host >= 0) & ~fleet.instance_in_migration
        picked: list[int] = []
        for h in np.flatnonzero(risky).tolist():
            members = np.flatnonzero(movable & (fleet.instance_host == h))
            mean, var = host_mean[h].copy(), host_sd[h] ** 2
            while members.size:
                now = float(np.max(mean + z * np.sqrt(var)))
                if now <= limit[h]:
                    break
                without = np.max(
                    (mean - demand[members]) + z * np.sqrt(np.maximum(var - variance[members], 0.0)), axis=1
                )
                gain = now - without
                best = int(np.argmax(gain / cost[members]))
                if gain[best] <= 0.0:
                    break
                i = int(members[best])
                picked.append(i)
                mean = mean - demand[i]
                var = np.maximum(var - variance[i], 0.0)
                members = np.delete(members, best)
        evicted = np.array(picked, dtype=np.int64)
        for i in picked:
            h = int(instances.host[i])
            hosts.load_mips[h] -= instances.request_mips[i]
            hosts.headroom_mips[h] += instances.request_mips[i]
            hosts.ram_free_bytes[h] += instances.ram_bytes[i]
        for h in np.unique(instances.host[evicted]).tolist():
            util = np.array([hosts.load_mips[h] / hosts.capacity_mips[h]])
            hosts.power_now_w[h] = power_at(hosts.power_w[h : h + 1], util)[0]
        order = np.argsort(-instances.request_mips[evicted], kind="stable")
        return np.ascontiguousarray(evicted[order])

    def migration_cost(self, fleet: FleetSnapshot) -> FloatArray:
        """Relative cost of moving each instance: its memory, discounted by a fresh mirror.

        A mirror snapshot of age ``a`` lets a move restore from it and ship only what changed since,
        so the memory cost is scaled by ``1 - mirror_discount * exp(-a / mirror_fresh_s)``. Without
        mirror information (mirroring off) the cost is the memory, as in minimum-migration-time.
        """
        ram = np.maximum(np.asarray(fleet.instance_ram_bytes, dtype=np.float64), 1.0)
        if fleet.instance_mirror_ivn is None or fleet.instance_mirror_age_s is None:
            return ram
        age = np.where(fleet.instance_mirror_ivn >= 0, fleet.instance_mirror_age_s, np.inf)
        freshness = np.exp(-np.asarray(age, dtype=np.float64) / self.mirror_fresh_s)
        return ram * (1.0 - self.mirror_discount * freshness)

    # ------------------------------------------------------------------ outputs

    @staticmethod
    def _move(fleet: FleetSnapshot, inst: int, source: int, target: int, reason: int, risk: float, util: float) -> Move:
        instance_id = fleet.instance_ids[inst]
        assessment = RiskAssessment(instance_id, risk_score=risk, predicted_load=util, health_metrics={})
        return Move(
            instance_id,
            fleet.ivn_names[int(fleet.host_ivn[target])],
            fleet.host_ids[target],
            reason=MoveReason.OVERLOAD if reason == placement_kernels.OVERLOAD else MoveReason.UNDERLOAD,
            risk=assessment,
            source_ivn=fleet.ivn_names[int(fleet.host_ivn[source])],
        )

    def _snapshot_changes(self, fleet: FleetSnapshot, risk: FloatArray) -> dict[str, float]:
        """Snapshot-interval changes: shorter for instances on hosts at risk, back to normal after.

        Only changes are emitted (the controller forwards every entry to the Mirror Store).
        """
        if self.snapshot_interval_risky_s is None or self.snapshot_interval_s is None:
            return {}
        placed = fleet.instance_host >= 0
        at_risk = np.zeros(fleet.n_instances, dtype=np.bool_)
        at_risk[placed] = risk[fleet.instance_host[placed]] >= self.snapshot_risk
        now = {fleet.instance_ids[i] for i in np.flatnonzero(at_risk).tolist()}
        changes = dict.fromkeys(sorted(now - self._risky_mirrored), self.snapshot_interval_risky_s)
        changes.update(dict.fromkeys(sorted(self._risky_mirrored - now), self.snapshot_interval_s))
        self._risky_mirrored = now
        return changes


# ---------------------------------------------------------------------- helpers


def history_steps(history: FloatArray, instance_host: IntArray) -> int:
    """Observed samples of the median placed instance (0 without placed instances)."""
    placed = instance_host >= 0
    if not placed.any() or history.shape[1] == 0:
        return 0
    return int(np.median((~np.isnan(history[placed])).sum(axis=1)))


def overload_probability(mean: FloatArray, sd: FloatArray, limit: FloatArray) -> FloatArray:
    """Per host, the largest over the horizon of ``P(N(mean_k, sd_k^2) > limit)``.

    ``mean`` and ``sd`` are (hosts, horizon); ``limit`` is per host. A host with no spread is at
    risk 1 if its mean passes the limit, else 0.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(sd > 0.0, ndtr((mean - limit[:, None]) / sd), (mean > limit[:, None]).astype(np.float64))
    return np.asarray(p.max(axis=1), dtype=np.float64)


def _per_host(fleet: FleetSnapshot, values: FloatArray, placed: BoolArray) -> FloatArray:
    """Sum (instances, horizon) values over each host's instances: (hosts, horizon)."""
    out = np.zeros((fleet.n_hosts, values.shape[1]))
    np.add.at(out, fleet.instance_host[placed], values[placed])
    return out


_ARTEFACT_FIELDS = frozenset({"path", "format_version", "config"})
"""Fields an unusable LSTM artefact is reported under by :mod:`policies.forecast_lstm`."""


def _build_forecaster(name: str, params: Mapping[str, Any] | None, artefact: str | None, horizon: int) -> Forecaster:
    """Make the forecaster, reporting any problem under this policy's parameter names."""
    if not isinstance(name, str):
        raise PolicyConfigError("forecaster", f"must be a forecaster name, got {name!r}")
    if params is not None and not isinstance(params, Mapping):
        raise PolicyConfigError("forecaster_params", f"must be a table of parameters, got {params!r}")
    kwargs = dict(params or {})
    if name == "lstm":
        if artefact is None:
            raise PolicyConfigError("artefact", "the lstm forecaster needs the path of a trained model")
        if not Path(artefact).is_file():
            raise PolicyConfigError("artefact", f"no such file {artefact!r}; train one with forecast-eval --save-lstm")
        kwargs["artefact"] = artefact
    elif artefact is not None:
        raise PolicyConfigError("artefact", f"only the lstm forecaster loads an artefact, not {name!r}")
    try:
        forecaster = make_forecaster(name, kwargs)
    except PolicyConfigError as err:
        field = "forecaster" if err.parameter == "name" else f"forecaster_params.{err.parameter}"
        if name == "lstm" and (err.parameter in _ARTEFACT_FIELDS or err.parameter.startswith("state_dict")):
            field = "artefact"
        raise PolicyConfigError(field, err.problem) from None
    model = getattr(forecaster, "model", None)
    config = getattr(model, "config", None)
    if config is not None:
        if config.n_exog:
            raise PolicyConfigError(
                "artefact", f"the model wants exogenous inputs {config.exog_names}; this policy feeds none"
            )
        if horizon > config.horizon:
            raise PolicyConfigError("horizon", f"{horizon} is beyond the model's horizon {config.horizon}")
    return forecaster


def _positive_int(parameter: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PolicyConfigError(parameter, f"must be an integer >= 1, got {value!r}")
    return int(value)


def _positive(parameter: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value > 0):
        raise PolicyConfigError(parameter, f"must be a finite number > 0, got {value!r}")
    return float(value)


def _probability(parameter: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value < 1.0:
        raise PolicyConfigError(parameter, f"must be a probability in (0, 1), got {value!r}")
    return float(value)


def _preset(forecaster: str, summary: str) -> Callable[..., PredictivePolicy]:
    """A registry factory: :class:`PredictivePolicy` with ``forecaster`` fixed.

    The factory carries the class's signature minus ``forecaster``, so the registry still reports
    unknown parameters by name.
    """

    def factory(**params: Any) -> PredictivePolicy:
        policy = PredictivePolicy(forecaster=forecaster, **params)
        policy.name = forecaster
        return policy

    signature = inspect.signature(PredictivePolicy)
    factory.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for p in signature.parameters.values() if p.name != "forecaster"]
    )
    factory.__doc__ = summary
    factory.__name__ = f"{forecaster}_policy"
    return factory


PREDICTIVE_POLICIES: dict[str, Callable[..., PredictivePolicy]] = {
    "predictive": PredictivePolicy,
    "arima": _preset("arima", "Predictive migration on ARIMA forecasts (threshold policy while history is short)."),
    "lstm": _preset("lstm", "Predictive migration on LSTM forecasts (needs artefact=; threshold policy until then)."),
}
"""The predictive policies by registry name."""
