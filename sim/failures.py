"""Host failures, the health metrics that warn of them, and the reactive failover that follows.

Each host runs a renewal process: a lifetime drawn from the scenario's distribution (exponential or
Weibull with mean ``mtbf_s``) or a scripted list, a failure, and, with ``repair_s``, a return to
service and a fresh lifetime. At a failure the host stops (no load, no power), its instances stop
serving, and every transfer from or to it is cut (the unsent bytes count as lost). After
``detection_s`` each affected instance gets a replacement on an available host:

* **with a complete mirror snapshot** it is restored from the Mirror Store at the store's restore
  throughput, and the data lost is what was written since that snapshot and never reached the store,
  ``unique_dirty_bytes(W, d, t_fail - latest_s)`` (raw, not compressed: it is application data);
* **without one** it is rebuilt from scratch in ``rebuild_boot_s`` and all its state is lost.

Health metrics (memory and disk I/O error counts per sampling interval) sit at a low baseline and rise
exponentially over the ``health_lead_time_s`` before a host's next failure, with lognormal noise, so a
failure predictor has something real to detect. Readings depend only on the seed and the sampling
interval, never on when or how often a policy asks.

The distributions live in :class:`FailureDistributions` alone, so issue 5 can swap in Backblaze fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import simpy

from scenarios.smart_health import SmartHealthSampler
from scenarios.spec import FailureSettings
from sim.datacenter import Datacenter
from sim.migration import MigrationExecutor
from sim.migration_physics import unique_dirty_bytes
from sim.mirroring import SimMirroring

FloatArray = npt.NDArray[np.float64]

#: Names of the health metrics, in the column order of :meth:`HostFailures.host_health`.
HEALTH_METRICS = ("memory_errors", "disk_io_errors")

FAILOVER_COLUMNS = ("instance_id", "failed_host", "target_host", "kind", "failed_s", "serving_s", "data_lost_bytes")


class FailureSpecError(ValueError):
    """A scripted failure the twin cannot apply; one line naming the field (``world`` re-raises it)."""


@dataclass(frozen=True)
class FailureDistributions:
    """Lifetimes and health-metric rates of hosts: the one place a failure model is parameterised.

    Why one small class: issue 5 replaces these parametric choices by distributions fitted on the
    Backblaze SMART data; nothing else in the twin should need to change for that.

    Attributes:
        settings: The scenario's failure settings.
        base_per_hour: Error counts per hour of a healthy host, one per metric.
        peak_factor: How many times the baseline a host reports just before it fails.
    """

    settings: FailureSettings
    base_per_hour: tuple[float, ...] = (0.2, 0.5)
    peak_factor: tuple[float, ...] = (200.0, 60.0)

    def lifetimes(self, rng: np.random.Generator, n: int) -> FloatArray:
        """Draw ``n`` host lifetimes (s) with mean ``mtbf_s``."""
        s = self.settings
        if s.model == "weibull":
            scale = s.mtbf_s / math.gamma(1.0 + 1.0 / s.weibull_shape)
            return scale * rng.weibull(s.weibull_shape, size=n)
        return rng.exponential(s.mtbf_s, size=n)

    def health_rate_per_s(self, time_to_failure_s: FloatArray) -> FloatArray:
        """Mean error rate (per s) of each host and metric, given its time to the next failure.

        The rate is the baseline until the lead window opens, then grows exponentially to
        ``peak_factor`` times the baseline at the failure: ``base * peak ** (1 - ttf / lead)``.
        """
        base = np.asarray(self.base_per_hour) / 3600.0
        lead = self.settings.health_lead_time_s
        ttf = np.asarray(time_to_failure_s, dtype=np.float64)[:, None]
        progress = np.clip(1.0 - ttf / lead, 0.0, 1.0) if lead > 0 else np.zeros_like(ttf)
        return base * np.asarray(self.peak_factor) ** progress

    def noise(self, rng: np.random.Generator, n: int) -> FloatArray:
        """Multiplicative lognormal noise of sigma ``health_noise`` with mean 1, one per host and metric."""
        sigma = self.settings.health_noise
        return rng.lognormal(-0.5 * sigma * sigma, sigma, size=(n, len(HEALTH_METRICS)))


class HostFailures:
    """The failure process of every host, the failover of their instances, and what it cost.

    Attributes:
        host_failures: Failures so far.
        step_host_failures: Failures per accounting step.
        step_down_s: Instance-seconds without service due to failures, per accounting step.
        instance_data_lost_bytes: Bytes each instance lost to failures.
        instance_failovers: Replacements that started serving, per instance.
        instance_failover_downtime_s: Seconds each instance was down because of a failure.
        rows: One tuple per completed failover (:data:`FAILOVER_COLUMNS`).
        unplaced: Failovers that found no host at some attempt (retried later).
    """

    def __init__(
        self,
        env: simpy.Environment,
        dc: Datacenter,
        mirroring: SimMirroring,
        executor: MigrationExecutor,
        settings: FailureSettings,
        rng: np.random.Generator,
        *,
        retry_interval_s: float,
        health_sampler: SmartHealthSampler | None = None,
    ):
        self.env = env
        self.dc = dc
        self.mirroring = mirroring
        self.executor = executor
        self._pack_below = settings.failover_max_util if settings.failover_placement == "pack" else None
        self.settings = settings
        # Failures get their own stream, seeded once from the run's: every run of a seed then sees the
        # same failures whatever else draws from the run's generator (health checks, policies), so
        # runs compared side by side face the same failures.
        self.rng = np.random.default_rng(int(rng.integers(2**63 - 1)))
        rng = self.rng
        self.retry_interval_s = retry_interval_s
        self.distributions = FailureDistributions(settings)
        n_h, n_i = len(dc.host_ids), len(dc.instance_ids)
        self.horizon_s = dc.n_steps * dc.step_s
        self.sampling_interval_s = dc.scenario.rma.sampling_interval_s
        self._script: list[list[float]] = [[] for _ in range(n_h)]
        if settings.model == "list":
            self._validate_script()
            self.next_fail_s = np.array([t[0] if t else np.inf for t in self._script])
        else:
            self.next_fail_s = self.distributions.lifetimes(rng, n_h)
        self.repair_at_s = np.full(n_h, np.inf)
        # Readings are derived per sampling interval from this seed, so they do not depend on queries.
        self._health_seed = int(rng.integers(2**63 - 1))
        self._noise_cache: tuple[int, FloatArray] | None = None
        # SMART health (failures.health_model = "smart"): each host carries one real healthy drive's
        # readings and one real failed drive's, and moves from the first to the second over the lead
        # time before it fails; a repaired host gets a new drive. Drawn from a stream of its own so the
        # failure times stay those of the parametric model.
        self.sampler: SmartHealthSampler | None = None
        self.health_names: tuple[str, ...] = HEALTH_METRICS
        if settings.health_model == "smart":
            if health_sampler is None:
                raise FailureSpecError(
                    "failures.health_model: 'smart' needs the Backblaze SMART data (traces/backblaze_smart_2019)"
                )
            self.sampler = health_sampler
            self.health_names = tuple(health_sampler.features)
            self._persona_rng = np.random.default_rng(np.random.SeedSequence(self._health_seed).spawn(1)[0])
            self._healthy_row = self._persona_rng.integers(0, len(health_sampler.healthy), size=n_h)
            self._failed_row = self._persona_rng.integers(0, len(health_sampler.failed), size=n_h)

        self.host_failures = 0
        self.step_host_failures = np.zeros(dc.n_steps, dtype=np.int64)
        self.step_down_s = np.zeros(dc.n_steps)
        self.down = np.zeros(n_i, dtype=bool)  # down because of a failure (the shared flag also covers copies)
        self.instance_data_lost_bytes = np.zeros(n_i)
        self.instance_failovers = np.zeros(n_i, dtype=np.int64)
        self.instance_failover_downtime_s = np.zeros(n_i)
        self.rows: list[tuple[object, ...]] = []
        self.unplaced = 0
        self._failed_host = np.full(n_i, -1, dtype=np.int64)
        self._home_ivn = np.zeros(n_i, dtype=np.int64)
        self._snapshot_at_fail = np.full(n_i, -np.inf)
        self._lost_at_fail = np.zeros(n_i)  # data lost by the instance's latest failure
        self._generation = np.zeros(n_i, dtype=np.int64)  # bumps cancel a pending restore
        self._pending: list[int] = []  # detected, waiting for a host
        self._last_s = env.now
        env.process(self._run())
        env.process(self._retry())

    # --- validation -----------------------------------------------------------------------------
    def _validate_script(self) -> None:
        dc = self.dc
        for j, f in enumerate(self.settings.times):
            h = dc.host_index.get(f.host)
            if h is None:
                raise FailureSpecError(
                    f"failures.times[{j}].host: unknown host {f.host!r} (hosts look like {dc.host_ids[0]!r})"
                )
            if f.at_s >= self.horizon_s:
                raise FailureSpecError(
                    f"failures.times[{j}].at_s: {f.at_s:g} s is past the end of the run ({self.horizon_s:g} s)"
                )
            self._script[h].append(float(f.at_s))
        for times in self._script:
            times.sort()

    # --- health metrics -------------------------------------------------------------------------
    def host_health(self, now: float | None = None) -> FloatArray:
        """Health readings of every host over the sampling interval containing ``now``.

        Returns:
            Array ``(hosts, len(HEALTH_METRICS))`` of error counts per sampling interval; NaN for a
            host that is down (it reports nothing).
        """
        t = float(self.env.now if now is None else now)
        j = int(t // self.sampling_interval_s)
        sample_t = j * self.sampling_interval_s
        if self.sampler is not None:
            lead = self.settings.health_lead_time_s
            ttf = self.next_fail_s - sample_t
            closeness = np.clip(1.0 - ttf / lead, 0.0, 1.0) if lead > 0 else (ttf <= 0).astype(np.float64)
            healthy = self.sampler.healthy[self._healthy_row]
            failed = self.sampler.failed[self._failed_row]
            out = np.round(healthy + closeness[:, None] * (failed - healthy))
            out[~self.dc.host_available] = np.nan
            return out
        if self._noise_cache is None or self._noise_cache[0] != j:
            rng = np.random.default_rng([self._health_seed, j])
            self._noise_cache = (j, self.distributions.noise(rng, len(self.dc.host_ids)))
        rate = self.distributions.health_rate_per_s(self.next_fail_s - sample_t)
        out = rate * self.sampling_interval_s * self._noise_cache[1]
        out[~self.dc.host_available] = np.nan
        return out

    def health_of_host(self, h: int) -> dict[str, float]:
        """Readings of host ``h`` now, by metric name; empty when the host is down."""
        if h < 0 or not self.dc.host_available[h]:
            return {}
        row = self.host_health()[h]
        return {name: float(v) for name, v in zip(self.health_names, row.tolist(), strict=True)}

    # --- accounting -----------------------------------------------------------------------------
    def _integrate(self) -> None:
        """Add the instance-seconds down since the last change to the accounting steps they fall in."""
        now = self.env.now
        t0, self._last_s = self._last_s, now
        n = int(self.down.sum())
        if n == 0 or now <= t0:
            return
        step = self.dc.step_s
        while t0 < now:
            k = min(int(t0 // step), self.dc.n_steps - 1)
            t1 = min(now, (k + 1) * step) if k < self.dc.n_steps - 1 else now
            if t1 <= t0:  # float edge at a step boundary
                t1 = now
            self.step_down_s[k] += n * (t1 - t0)
            t0 = t1

    def close(self) -> None:
        """Charge the downtime of instances still down at the end of the run."""
        self._integrate()
        now = self.env.now
        for i in np.flatnonzero(self.down).tolist():
            dt = now - float(self.dc.instance_down_since[i])
            self.dc.instance_downtime_s[i] += dt
            self.instance_failover_downtime_s[i] += dt
            self.dc.instance_down_since[i] = now

    # --- the processes --------------------------------------------------------------------------
    def _run(self):  # type: ignore[no-untyped-def]
        env = self.env
        while True:
            nxt = min(float(self.next_fail_s.min()), float(self.repair_at_s.min()))
            if not math.isfinite(nxt):
                return
            yield env.timeout(max(nxt - env.now, 0.0))
            for h in np.flatnonzero(self.repair_at_s <= env.now).tolist():
                self._repair(h)
            for h in np.flatnonzero(self.next_fail_s <= env.now).tolist():
                self._fail(h)

    def _retry(self):  # type: ignore[no-untyped-def]
        while True:
            yield self.env.timeout(self.retry_interval_s)
            self._place_pending()

    def _fail(self, h: int) -> None:
        env, dc, net = self.env, self.dc, self.dc.network
        dc.advance()
        self._integrate()
        now = env.now
        dc.host_available[h] = False
        self.next_fail_s[h] = np.inf
        if self.settings.repair_s is not None:
            self.repair_at_s[h] = now + self.settings.repair_s
        self._script[h] = [t for t in self._script[h] if t > now]
        self.host_failures += 1
        self.step_host_failures[min(dc.k, dc.n_steps - 1)] += 1
        # Cut every transfer leaving or entering the host's NIC.
        n_h = len(dc.host_ids)
        for t in net.active:
            if h in t.links or n_h + h in t.links:
                net.cancel(t)
        # Migrations towards the host are abandoned: their instances go on at their source.
        dc.migrating_to[dc.migrating_to == h] = -1
        lost_shadow = dc.shadow_host == h
        dc.shadow_host[lost_shadow] = -1
        dc.shadow_weight[lost_shadow] = 0.0
        # Instances on the host stop; so does a replacement still being restored onto it.
        affected = np.flatnonzero(dc.host_of == h)
        newly = affected[~self.down[affected]]
        dc.migrating_to[affected] = -1
        dc.host_of[affected] = -1
        self.down[affected] = True
        dc.instance_down[affected] = True
        dc.instance_down_since[newly] = now
        self._generation[affected] += 1
        self._failed_host[newly] = h
        self._home_ivn[newly] = dc.host_ivn[h]
        # What reached the store before the failure is all a restore can use; later writes are lost.
        rma = self.mirroring.settings.enabled
        latest = self.mirroring.latest_s[newly] if rma else np.full(newly.size, -np.inf)
        self._snapshot_at_fail[newly] = latest
        if newly.size:
            d = self.mirroring.dirty_Bps(newly)
            for pos, i in enumerate(newly.tolist()):
                if math.isfinite(latest[pos]):
                    lost = unique_dirty_bytes(float(self.mirroring.working_set[i]), float(d[pos]), now - latest[pos])
                else:
                    lost = float(dc.state_bytes[i])
                self.instance_data_lost_bytes[i] += lost
                self._lost_at_fail[i] = lost
        dc.invalidate()
        if affected.size:
            gens = self._generation[affected].copy()
            env.process(self._detect(affected, gens))

    def _detect(self, affected: np.ndarray, gens: np.ndarray):  # type: ignore[no-untyped-def]
        yield self.env.timeout(self.settings.detection_s)
        for i, g in zip(affected.tolist(), gens.tolist(), strict=True):
            if self._generation[i] == g and self.down[i] and i not in self._pending:
                self._pending.append(i)
        self._place_pending()

    def _repair(self, h: int) -> None:
        dc = self.dc
        dc.advance()
        now = self.env.now
        dc.host_available[h] = True
        self.repair_at_s[h] = np.inf
        if self.settings.model == "list":
            self._script[h] = [t for t in self._script[h] if t >= now]
            self.next_fail_s[h] = self._script[h][0] if self._script[h] else np.inf
        else:
            self.next_fail_s[h] = now + float(self.distributions.lifetimes(self.rng, 1)[0])
        if self.sampler is not None:  # the repair put in a new drive
            self._healthy_row[h] = self._persona_rng.integers(0, len(self.sampler.healthy))
            self._failed_row[h] = self._persona_rng.integers(0, len(self.sampler.failed))
        dc.invalidate()
        self._place_pending()

    def _target_ivns(self, i: int, mirrored: bool) -> list[int]:
        """IVNs to try, best first: the mirror's IVN (restore is local there), then home, then the rest."""
        first = [int(self.mirroring.store_ivn[i])] if mirrored else []
        order = [*first, int(self._home_ivn[i]), *range(len(self.dc.ivn_names))]
        allowed = self.dc.scenario.allowed_ivns()  # workload.may_move_to / min_security_level
        return [k for k in dict.fromkeys(order) if allowed[k]]

    def _place_pending(self) -> None:
        if not self._pending:
            return
        waiting, self._pending = self._pending, []
        dc = self.dc
        for i in waiting:
            if not self.down[i]:
                continue
            if dc.host_of[i] >= 0:
                # Its host died during a progressive traffic shift, and the load balancer has since
                # sent all traffic to the caught-up replacement: that is the failover.
                self._serve(i, int(dc.host_of[i]), "replacement")
            elif dc.shadow_host[i] >= 0 and dc.host_available[dc.shadow_host[i]]:
                # A caught-up replacement runs elsewhere (mid-shift): fail over onto it at once
                # rather than restoring a third copy; the workflow's later redirect is then a no-op.
                dc.advance()
                h = int(dc.shadow_host[i])
                dc.host_of[i] = h
                dc.shadow_host[i] = -1
                dc.shadow_weight[i] = 0.0
                dc.invalidate()
                self._serve(i, h, "replacement")
            elif not self._start_failover(i):
                self._pending.append(i)

    def _start_failover(self, i: int) -> bool:
        """Reserve a host for instance ``i`` and start its restore or rebuild; False if none fits."""
        env, dc = self.env, self.dc
        mirrored = math.isfinite(self._snapshot_at_fail[i])
        target = -1
        for ivn in self._target_ivns(i, mirrored):
            target = self.executor.pick_host(i, ivn, pack_below=self._pack_below)
            if target >= 0:
                break
        if target < 0:
            self.unplaced += 1
            return False
        dc.advance()
        self._integrate()
        dc.host_of[i] = target  # the replacement holds its slot while it restores
        dc.invalidate()
        if mirrored:
            ivn = dc.scenario.topology.ivns[int(dc.host_ivn[target])]
            duration = float(dc.state_bytes[i]) / (ivn.mirror_store_restore_bps / 8.0)
        else:
            duration = self.settings.rebuild_boot_s
        if self.mirroring.settings.enabled:  # no snapshots of a replacement that is not up yet
            self.mirroring.next_due_s[i] = max(float(self.mirroring.next_due_s[i]), env.now + duration)
        gen = int(self._generation[i])
        env.process(self._serve_after(i, target, duration, gen, "mirror-restore" if mirrored else "rebuild"))
        return True

    def _serve_after(self, i: int, h: int, duration: float, gen: int, kind: str):  # type: ignore[no-untyped-def]
        yield self.env.timeout(duration)
        if self._generation[i] != gen:
            return  # the replacement's host failed while it restored; a new failover is under way
        self._serve(i, h, kind)

    def _serve(self, i: int, h: int, kind: str) -> None:
        """Instance ``i`` serves again from host ``h``: close its down time and record the failover."""
        dc = self.dc
        dc.advance()
        self._integrate()
        now = self.env.now
        since = float(dc.instance_down_since[i])
        downtime = now - since
        self.down[i] = False
        dc.instance_down[i] = False
        dc.instance_down_since[i] = np.nan
        dc.instance_downtime_s[i] += downtime
        self.instance_failover_downtime_s[i] += downtime
        self.instance_failovers[i] += 1
        self.rows.append(
            (
                dc.instance_ids[i],
                dc.host_ids[int(self._failed_host[i])],
                dc.host_ids[h],
                kind,
                since,
                now,
                float(self._lost_at_fail[i]),
            )
        )
        dc.invalidate()

    # --- figures for the result -----------------------------------------------------------------
    def summary(self) -> dict[str, float | int]:
        """Per-run failure figures for :class:`~sim.results.RunResult`'s summary."""
        done = [r[5] - r[4] for r in self.rows]
        return {
            "host_failures": self.host_failures,
            "failover_downtime_s": float(self.instance_failover_downtime_s.sum()),
            "data_lost_bytes": float(self.instance_data_lost_bytes.sum()),
            "instances_failed_over": int((self.instance_failovers > 0).sum()),
            "failovers": int(self.instance_failovers.sum()),
            "failover_mean_s": float(np.mean(done)) if done else 0.0,
            "instances_unplaced": int(self.down.sum()),
        }
