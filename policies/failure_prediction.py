"""Host failure risk from health readings: a classifier trained on real drive SMART data.

:class:`FailureRiskModel` turns a host's health readings (a few named counters, see
:data:`DEFAULT_FEATURES`) into ``P(failure)``. It is the same object in the twin and against a live
fleet: it only sees a table of readings, never where they came from.

How it is fitted (:meth:`FailureRiskModel.fit`), so that nothing is tuned on data it is scored on:

* the candidates are a regularised logistic regression on ``log1p`` counters (two strengths) and a
  histogram gradient-boosted tree; both weight the classes inversely to their frequency, because
  failures are 0.4-15 % of drives;
* each candidate is scored by PR-AUC on out-of-fold predictions of a stratified k-fold split **of the
  training data only** (drives grouped when a drive has several rows); the best is kept (ties go to the
  earlier, simpler candidate) and refitted on all training rows;
* the decision threshold is the one that maximises F1 on those same out-of-fold predictions.

Class weighting inflates the scores (a balanced model thinks half of all drives fail), so
:meth:`FailureRiskModel.predict_proba` undoes it with the exact prior correction for a logistic model,
``logit(p) - log(n_healthy / n_failed)``; the ranking, and so ROC-AUC and PR-AUC, are unchanged. The
result is a probability at the *training data's* base rate (about 1.2 % of drives failing in their last
record), not a per-day hazard; see ``docs/failure-prediction.md``.

:func:`run_evaluation` is the held-out experiment behind ``mirrortwin failure-model`` and
``docs/failure-prediction.md``: a seeded split by drive, stratified by drive model and outcome, metrics
per evaluation set with the base rate and a no-skill PR-AUC beside them, plus leave-one-drive-model-out
transfer. It takes data frames, not files, so the core stays free of trace loading.

Every random choice (fold assignment, split, tree seeds) comes from an injected
``numpy.random.Generator``; scikit-learn gets integer seeds drawn from it. Training runs single-threaded
(``threadpoolctl``): the data is small and the project's machines have two shared cores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]

#: Health features the default model reads: error counters whose value on a drive's last day does not
#: depend on the calendar date of that day. ``power_on_hours`` and ``temperature_c`` are left out by
#: default because in the Backblaze last-day files a failed drive is observed on its failure date and a
#: healthy one on 2019-12-31, so age and (seasonal) temperature leak the snapshot date into the label;
#: the evaluation reports that variant separately.
DEFAULT_FEATURES: tuple[str, ...] = ("reallocated_sectors", "pending_sectors", "crc_errors")
#: Every health feature the SMART loader provides (the ablation uses all of them).
ALL_FEATURES: tuple[str, ...] = (*DEFAULT_FEATURES, "power_on_hours", "temperature_c")

ARTEFACT_FORMAT = "mirrortwin-failure-risk"
#: Bump when the artefact's content or meaning changes; older files are then refused.
ARTEFACT_VERSION = 1
_SEED_HIGH = 2**31 - 1


class FailureModelError(ValueError):
    """Bad input to the failure model (features, labels, an artefact); one line naming what is wrong."""


@dataclass(frozen=True)
class Candidate:
    """One model family and its settings, as tried during model selection.

    Attributes:
        name: Short label used in reports (``logistic-C1``, ``hgb``).
        kind: ``logistic`` or ``hgb``.
        params: Keyword arguments for the scikit-learn estimator.
    """

    name: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)


#: Tried in this order; a tie keeps the earlier (simpler) one.
CANDIDATES: tuple[Candidate, ...] = (
    Candidate("logistic-C0.1", "logistic", {"C": 0.1}),
    Candidate("logistic-C1", "logistic", {"C": 1.0}),
    Candidate(
        "hgb",
        "hgb",
        {"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 15, "min_samples_leaf": 20, "l2_regularization": 1.0},
    ),
)


def _estimator(candidate: Candidate, seed: int) -> Any:
    """A fresh scikit-learn pipeline for ``candidate``: ``log1p`` then the classifier."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    log = FunctionTransformer(np.log1p, validate=False)
    if candidate.kind == "logistic":
        return make_pipeline(
            log, StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000, **candidate.params)
        )
    if candidate.kind == "hgb":
        return make_pipeline(
            log,
            HistGradientBoostingClassifier(
                class_weight="balanced", early_stopping=False, random_state=seed, **candidate.params
            ),
        )
    raise FailureModelError(f"candidate {candidate.name!r}: unknown kind {candidate.kind!r} (logistic or hgb)")


def _single_thread() -> Any:
    """Context manager limiting BLAS/OpenMP to one thread (small data; shared 2-core machines)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _shifted(p: FloatArray, shift: float) -> FloatArray:
    """``sigmoid(logit(p) - shift)``, computed stably (``p`` may be exactly 0 or 1)."""
    if shift == 0.0:
        return p
    with np.errstate(divide="ignore"):
        logit = np.log(p) - np.log1p(-p)
    return np.asarray(1.0 / (1.0 + np.exp(-(logit - shift))), dtype=np.float64)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, _SEED_HIGH))


def feature_matrix(readings: pd.DataFrame | npt.ArrayLike, features: Sequence[str]) -> FloatArray:
    """Health readings as a float matrix with ``features`` as columns, checked.

    Args:
        readings: A frame holding (at least) the ``features`` columns, or an array of shape
            ``(n, len(features))`` whose columns are already in that order.
        features: Names the model expects.

    Raises:
        FailureModelError: A missing column, a wrong shape, or a value that is not a finite number >= 0.
    """
    if isinstance(readings, pd.DataFrame):
        missing = [f for f in features if f not in readings.columns]
        if missing:
            raise FailureModelError(
                f"health readings lack column(s) {', '.join(missing)}; the model needs {', '.join(features)}"
            )
        try:
            matrix = readings.loc[:, list(features)].to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            bad = next(f for f in features if not pd.api.types.is_numeric_dtype(readings[f]))
            raise FailureModelError(f"health reading {bad!r} is not numeric") from None
    else:
        try:
            matrix = np.asarray(readings, dtype=np.float64)
        except (TypeError, ValueError):
            raise FailureModelError("health readings are not numeric") from None
        if matrix.ndim == 1 and matrix.size == len(features):
            matrix = matrix.reshape(1, -1)
        if matrix.ndim != 2 or matrix.shape[1] != len(features):
            raise FailureModelError(
                f"health readings have shape {matrix.shape}; expected (n, {len(features)}) "
                f"with columns {', '.join(features)}"
            )
    bad_rows = ~(np.isfinite(matrix) & (matrix >= 0))
    if bad_rows.any():
        row, col = (int(i[0]) for i in np.nonzero(bad_rows))
        raise FailureModelError(
            f"health reading {features[col]!r} of row {row} is {float(matrix[row, col])}; expected a finite number >= 0"
        )
    return matrix


def _labels(y: npt.ArrayLike, n: int) -> npt.NDArray[np.int64]:
    labels = np.asarray(y)
    if labels.shape != (n,):
        raise FailureModelError(f"labels have shape {labels.shape}; expected ({n},)")
    if not np.isin(labels, (0, 1)).all():
        raise FailureModelError("labels must be 0 (healthy) or 1 (failed)")
    if labels.min() == labels.max():
        raise FailureModelError("labels hold one class only; need failed and healthy examples")
    return labels.astype(np.int64)


def best_f1_threshold(y_true: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """The score threshold (``p >= t`` flags) with the highest F1 on ``(y_true, p)``; ties: the highest t."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(np.asarray(y_true), np.asarray(p, dtype=np.float64))
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    best = np.flatnonzero(f1 == f1.max())
    return float(thresholds[best[-1]])


def _folds(labels: npt.NDArray[np.int64], groups: npt.ArrayLike | None, k: int, seed: int) -> list[Any]:
    """Stratified (and, with ``groups``, drive-grouped) k-fold index pairs."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    k = max(2, min(k, int(labels.sum()), int((1 - labels).sum())))
    index = np.zeros(len(labels))
    if groups is None:
        return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(index, labels))
    return list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(index, labels, groups))


class FailureRiskModel:
    """``P(failure)`` of a host from its health readings, with the decision threshold chosen in training.

    Build one with :meth:`fit` or :meth:`load`; the constructor only wraps a fitted estimator.

    Attributes:
        features: Reading names, in the column order the estimator expects.
        threshold: ``predict_proba(x) >= threshold`` is the stated "will fail" decision.
        candidate: The model family chosen during selection.
        selection: Out-of-fold PR-AUC of every candidate tried (empty for a hand-built model).
        logit_shift: Subtracted from the estimator's logit to undo the class weighting
            (``log(n_healthy / n_failed)`` of the training data).
        provenance: What the model was trained on (data, seed), saved with it; the caller fills it in.
    """

    def __init__(
        self,
        estimator: Any,
        features: Sequence[str],
        threshold: float,
        candidate: Candidate,
        selection: dict[str, float] | None = None,
        logit_shift: float = 0.0,
        provenance: dict[str, Any] | None = None,
    ) -> None:
        self.provenance = dict(provenance or {})
        self.estimator = estimator
        self.logit_shift = float(logit_shift)
        self.features = tuple(features)
        self.threshold = float(threshold)
        self.candidate = candidate
        self.selection = dict(selection or {})

    @classmethod
    def fit(
        cls,
        readings: pd.DataFrame | npt.ArrayLike,
        labels: npt.ArrayLike,
        *,
        rng: np.random.Generator,
        features: Sequence[str] = DEFAULT_FEATURES,
        groups: npt.ArrayLike | None = None,
        candidates: Sequence[Candidate] = CANDIDATES,
        folds: int = 3,
    ) -> FailureRiskModel:
        """Choose a candidate and a threshold on out-of-fold predictions of ``readings``, then refit on all.

        Args:
            readings: Training readings (frame with ``features`` columns, or an array in that order).
            labels: 1 for a row of a failing drive/host, 0 otherwise.
            rng: Source of every seed (fold split, tree seeds).
            features: Readings the model uses.
            groups: Drive id per row when drives have several rows, so folds never split a drive.
            candidates: Model families to try.
            folds: Number of cross-validation folds (fewer if a class has fewer members).

        Raises:
            FailureModelError: Bad readings or labels, or no candidates.
        """
        from sklearn.metrics import average_precision_score

        if not candidates:
            raise FailureModelError("no candidate models to choose from")
        X = feature_matrix(readings, features)
        y = _labels(labels, len(X))
        shift = math.log(float((y == 0).sum()) / float(y.sum()))
        split = _folds(y, groups, folds, _seed(rng))
        seeds = [_seed(rng) for _ in candidates]
        scores: dict[str, float] = {}
        oof_by_name: dict[str, FloatArray] = {}
        with _single_thread():
            for candidate, seed in zip(candidates, seeds, strict=True):
                oof = np.empty(len(y), dtype=np.float64)
                for train_idx, valid_idx in split:
                    est = _estimator(candidate, seed).fit(X[train_idx], y[train_idx])
                    oof[valid_idx] = _shifted(est.predict_proba(X[valid_idx])[:, 1], shift)
                scores[candidate.name] = float(average_precision_score(y, oof))
                oof_by_name[candidate.name] = oof
            best_score = max(scores.values())
            chosen_at = next(i for i, c in enumerate(candidates) if scores[c.name] == best_score)
            chosen = candidates[chosen_at]
            threshold = best_f1_threshold(y, oof_by_name[chosen.name])
            estimator = _estimator(chosen, seeds[chosen_at]).fit(X, y)
        return cls(estimator, features, threshold, chosen, scores, shift)

    def predict_proba(self, readings: pd.DataFrame | npt.ArrayLike) -> FloatArray:
        """``P(failure)`` per row of ``readings`` (a frame with :attr:`features`, or an array in that order)."""
        X = feature_matrix(readings, self.features)
        if len(X) == 0:
            return np.zeros(0, dtype=np.float64)
        with _single_thread():
            raw = np.asarray(self.estimator.predict_proba(X)[:, 1], dtype=np.float64)
        return _shifted(raw, self.logit_shift)

    def flags(self, readings: pd.DataFrame | npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """True for rows whose risk reaches :attr:`threshold`."""
        return self.predict_proba(readings) >= self.threshold

    def save(self, path: Path) -> Path:
        """Write the model, its feature list and the library versions to ``path`` (joblib)."""
        import joblib
        import sklearn

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": ARTEFACT_FORMAT,
            "version": ARTEFACT_VERSION,
            "sklearn_version": sklearn.__version__,
            "features": list(self.features),
            "threshold": self.threshold,
            "logit_shift": self.logit_shift,
            "candidate": {"name": self.candidate.name, "kind": self.candidate.kind, "params": self.candidate.params},
            "selection": self.selection,
            "provenance": self.provenance,
            "estimator": self.estimator,
        }
        joblib.dump(payload, path)
        return path

    @classmethod
    def load(cls, path: Path, *, features: Sequence[str] | None = None) -> FailureRiskModel:
        """Read a model written by :meth:`save` (trusted files only: joblib unpickles code).

        Args:
            path: The artefact.
            features: The readings the caller will supply; a model trained on others is refused.

        Raises:
            FailureModelError: Missing or unreadable file, another format or version, another
                scikit-learn version, or a feature list that differs from ``features``.
        """
        import joblib
        import sklearn

        path = Path(path)
        if not path.is_file():
            raise FailureModelError(f"{path}: no failure-model artefact (train one with `mirrortwin failure-model`)")
        try:
            payload = joblib.load(path)
        except Exception as exc:  # unpickling can raise almost anything on a foreign or truncated file
            raise FailureModelError(f"{path}: not a readable failure-model artefact ({type(exc).__name__})") from None
        if not isinstance(payload, dict) or payload.get("format") != ARTEFACT_FORMAT:
            raise FailureModelError(f"{path}: not a {ARTEFACT_FORMAT} artefact")
        if payload.get("version") != ARTEFACT_VERSION:
            raise FailureModelError(
                f"{path}: artefact version {payload.get('version')!r}, this code reads version {ARTEFACT_VERSION}; "
                "retrain with `mirrortwin failure-model`"
            )
        if payload.get("sklearn_version") != sklearn.__version__:
            raise FailureModelError(
                f"{path}: trained with scikit-learn {payload.get('sklearn_version')}, this is {sklearn.__version__}; "
                "retrain with `mirrortwin failure-model`"
            )
        stored = tuple(payload["features"])
        if features is not None and tuple(features) != stored:
            raise FailureModelError(
                f"{path}: model reads features ({', '.join(stored)}), caller supplies ({', '.join(features)})"
            )
        c = payload["candidate"]
        return cls(
            payload["estimator"],
            stored,
            payload["threshold"],
            Candidate(c["name"], c["kind"], dict(c["params"])),
            payload.get("selection"),
            payload.get("logit_shift", 0.0),
            payload.get("provenance"),
        )


@dataclass(frozen=True)
class HeldOutMetrics:
    """Classifier quality on one evaluation set, with what a no-skill model would score.

    Attributes:
        name: Evaluation set.
        rows: Rows scored.
        drives: Distinct drives among them.
        positives: Rows labelled failed.
        threshold: Decision threshold used for precision and recall.
        precision: Of the rows flagged (``p >= threshold``), the share that failed (NaN if none flagged).
        recall: Of the failed rows, the share flagged.
        roc_auc: Area under the ROC curve (NaN with one class).
        pr_auc: Average precision (area under the precision-recall curve).
    """

    name: str
    rows: int
    drives: int
    positives: int
    threshold: float
    precision: float
    recall: float
    roc_auc: float
    pr_auc: float

    @property
    def base_rate(self) -> float:
        """Positives / rows: the class imbalance, and the PR-AUC of a model that guesses."""
        return self.positives / self.rows if self.rows else math.nan

    @property
    def no_skill_pr_auc(self) -> float:
        """PR-AUC of a random score: the base rate."""
        return self.base_rate


def held_out_metrics(
    name: str, y_true: npt.ArrayLike, p: npt.ArrayLike, threshold: float, drives: npt.ArrayLike | None = None
) -> HeldOutMetrics:
    """Precision and recall at ``threshold``, ROC-AUC and PR-AUC of scores ``p`` against ``y_true``."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(y_true).astype(np.int64)
    scores = np.asarray(p, dtype=np.float64)
    flagged = scores >= threshold
    positives = int(y.sum())
    true_pos = int((flagged & (y == 1)).sum())
    two_classes = 0 < positives < len(y)
    return HeldOutMetrics(
        name=name,
        rows=len(y),
        drives=len(np.unique(np.asarray(drives))) if drives is not None else len(y),
        positives=positives,
        threshold=float(threshold),
        precision=true_pos / int(flagged.sum()) if flagged.any() else math.nan,
        recall=true_pos / positives if positives else math.nan,
        roc_auc=float(roc_auc_score(y, scores)) if two_classes else math.nan,
        pr_auc=float(average_precision_score(y, scores)) if positives else math.nan,
    )


def split_by_drive(
    drive_ids: npt.ArrayLike, labels: npt.ArrayLike, strata: npt.ArrayLike, rng: np.random.Generator, test_share: float
) -> npt.NDArray[np.bool_]:
    """Mark the rows of a seeded, stratified share of drives as the test part.

    A drive's label is the maximum of its rows' labels; each (stratum, label) group of drives contributes
    ``round(test_share * size)`` drives to the test part, so failed drives of every model are held out.

    Returns:
        Boolean mask over the rows: True for rows of a test drive.
    """
    if not 0.0 < test_share < 1.0:
        raise FailureModelError(f"test share must be in (0, 1), got {test_share}")
    frame = pd.DataFrame({"drive": np.asarray(drive_ids), "label": np.asarray(labels), "stratum": np.asarray(strata)})
    per_drive = frame.groupby("drive", sort=True).agg(label=("label", "max"), stratum=("stratum", "first"))
    test: list[Any] = []
    for _, group in per_drive.groupby(["stratum", "label"], sort=True):
        take = round(test_share * len(group))
        if take:
            test.extend(group.index[rng.permutation(len(group))[:take]])
    return frame["drive"].isin(set(test)).to_numpy()


@dataclass(frozen=True)
class Evaluation:
    """What :func:`run_evaluation` found.

    Attributes:
        model: The model trained on the training drives (the artefact ``failure-model`` saves).
        rows: Held-out metrics, one per evaluation set, in report order.
        train_drives, test_drives: Drive counts of the main split.
        train_positives: Failed drives in the training part.
    """

    model: FailureRiskModel
    rows: tuple[HeldOutMetrics, ...]
    train_drives: int
    test_drives: int
    train_positives: int


def run_evaluation(
    last_day: pd.DataFrame,
    ten_day: pd.DataFrame | None,
    rng: np.random.Generator,
    *,
    features: Sequence[str] = DEFAULT_FEATURES,
    test_share: float = 0.3,
    progress: Callable[[str], None] | None = None,
) -> Evaluation:
    """Train on a seeded share of drives and score the rest, across models, and on the 10-day rows.

    Args:
        last_day: One row per drive with ``drive_model``, ``serial_number``, ``failure`` and the features.
        ten_day: Up to ten rows per drive (failure = 1 on a failed drive's last ten days), or None. Only
            rows of drives held out in ``last_day``'s split are scored, so no drive is trained and tested on.
        rng: Source of the split and every model seed.
        features: Readings the main model uses.
        test_share: Share of drives held out, per (drive model, outcome).
        progress: Called with a short line before each stage.

    Returns:
        The main model and, in order: all held-out drives, each drive model's held-out drives, the 10-day
        rows of held-out drives, each drive model scored by a model trained on the other models, and the
        held-out drives scored by a model using :data:`ALL_FEATURES` (age and temperature, which leak the
        snapshot date; see :data:`DEFAULT_FEATURES`).
    """
    say = progress or (lambda _line: None)
    test = held_out_mask(last_day, rng, test_share)
    train = ~test
    y = last_day["failure"].to_numpy()
    say(f"training on {int(train.sum())} drives ({int(y[train].sum())} failed)")
    model = FailureRiskModel.fit(last_day.loc[train], y[train], rng=rng, features=features)
    rows = score_held_out(model, last_day, ten_day, test)
    all_models = last_day["drive_model"].to_numpy()
    for name in sorted(set(all_models)):
        say(f"transfer: training without {name}")
        held = all_models == name
        other = FailureRiskModel.fit(last_day.loc[~held], y[~held], rng=rng, features=features)
        p_held = other.predict_proba(last_day.loc[held])
        rows.append(held_out_metrics(f"unseen model {name} (trained on the others)", y[held], p_held, other.threshold))
    say("ablation: all features including age and temperature")
    wide = FailureRiskModel.fit(last_day.loc[train], y[train], rng=rng, features=ALL_FEATURES)
    rows.append(
        held_out_metrics(
            "held-out drives, + age & temperature (date-confounded)",
            y[test],
            wide.predict_proba(last_day.loc[test]),
            wide.threshold,
        )
    )
    return Evaluation(
        model=model,
        rows=tuple(rows),
        train_drives=int(train.sum()),
        test_drives=int(test.sum()),
        train_positives=int(y[train].sum()),
    )


def held_out_mask(last_day: pd.DataFrame, rng: np.random.Generator, test_share: float = 0.3) -> npt.NDArray[np.bool_]:
    """The test rows of :func:`run_evaluation`'s split; the first draws from ``rng``, so a seed fixes it."""
    drive = (last_day["drive_model"] + "/" + last_day["serial_number"]).to_numpy()
    return split_by_drive(drive, last_day["failure"].to_numpy(), last_day["drive_model"].to_numpy(), rng, test_share)


def score_held_out(
    model: FailureRiskModel, last_day: pd.DataFrame, ten_day: pd.DataFrame | None, test: npt.NDArray[np.bool_]
) -> list[HeldOutMetrics]:
    """Metrics of ``model`` on the ``test`` drives: all, per drive model, and their 10-day rows if given."""
    drive = (last_day["drive_model"] + "/" + last_day["serial_number"]).to_numpy()
    y = last_day["failure"].to_numpy()[test]
    p_test = model.predict_proba(last_day.loc[test])
    rows = [held_out_metrics("held-out drives, all models", y, p_test, model.threshold)]
    models_test = last_day.loc[test, "drive_model"].to_numpy()
    for name in sorted(set(models_test)):
        mask = models_test == name
        rows.append(held_out_metrics(f"held-out drives, {name}", y[mask], p_test[mask], model.threshold))
    if ten_day is not None:
        ten_drive = (ten_day["drive_model"] + "/" + ten_day["serial_number"]).to_numpy()
        scored = np.isin(ten_drive, drive[test])
        if scored.any():
            rows.append(
                held_out_metrics(
                    "10-day rows of held-out drives (TOSHIBA)",
                    ten_day["failure"].to_numpy()[scored],
                    model.predict_proba(ten_day.loc[scored]),
                    model.threshold,
                    drives=ten_drive[scored],
                )
            )
    return rows


def metrics_markdown(rows: Sequence[HeldOutMetrics]) -> str:
    """The evaluation rows as a markdown table (NaN shown as ``n/a``)."""

    def num(x: float, digits: int = 3) -> str:
        return "n/a" if math.isnan(x) else f"{x:.{digits}f}"

    lines = [
        "| evaluation set | rows | drives | failed rows | base rate | threshold | precision | recall "
        "| ROC-AUC | PR-AUC | no-skill PR-AUC |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.rows} | {r.drives} | {r.positives} | {r.base_rate:.2%} | {num(r.threshold)} "
            f"| {num(r.precision)} | {num(r.recall)} | {num(r.roc_auc)} | {num(r.pr_auc)} | {num(r.no_skill_pr_auc)} |"
        )
    return "\n".join(lines)


def metrics_frame(rows: Sequence[HeldOutMetrics]) -> pd.DataFrame:
    """The evaluation rows as a frame (one row per evaluation set, base rate and no-skill PR-AUC included)."""
    return pd.DataFrame(
        [
            {
                "evaluation_set": r.name,
                "rows": r.rows,
                "drives": r.drives,
                "failed_rows": r.positives,
                "base_rate": r.base_rate,
                "threshold": r.threshold,
                "precision": r.precision,
                "recall": r.recall,
                "roc_auc": r.roc_auc,
                "pr_auc": r.pr_auc,
                "no_skill_pr_auc": r.no_skill_pr_auc,
            }
            for r in rows
        ]
    )
