"""Output-length predictions: what an online policy is told about each request before it runs.

A :class:`Predictions` object holds, aligned with the requests of one instance, a point prediction
``point`` (an integer >= 1) and a range ``[lo, hi]`` (1 <= lo <= hi); the truth may lie outside the
range.  It is immutable and records the predictor's spec and seed, so a run can be repeated.

Predictors (:func:`make_predictions`, spec strings parsed by :func:`parse_spec`):

* ``exact``: the truth, ``lo = hi = o``.
* ``lognormal:SIGMA``: ``round(o * exp(N(0, SIGMA^2)))``, at least 1; the range is the predictor's
  own one-sigma band ``[p * exp(-SIGMA), p * exp(SIGMA)]`` (it covers the truth about 68% of the time).
* ``interval:W``: a range of relative width ``W`` (``hi - lo ~ W * o``) containing the truth at a
  uniformly random position; the point is the range's midpoint.
* ``bins:K`` (or ``bins:K:P``): the classifier of the literature.  ``K`` quantile buckets of the
  instance's output lengths; each request is told its bucket's mean and range (with probability
  ``P``, default 0, a neighbouring bucket instead).
* ``constant``: everybody gets the instance's mean output, the range is ``[min o, max o]``.
* ``adversarial:F``: the longest quarter of the requests (``o`` at or above the 75th percentile) is
  predicted ``round(o / F)``, the others exactly; the range is the point (falsely certain).
* ``file``: the instance's own ``predicted_output`` / ``output_range`` (:func:`from_meta`).

:func:`with_predictions` writes predictions into an instance's ``meta`` (keys ``predicted_output``,
``output_range``, ``predictor``), which the JSON form keeps; :func:`from_meta` reads them back,
as lists aligned with the requests or as objects keyed by request id.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model.instance import Instance, IntArray

#: predictor name -> (takes a parameter, help)
PREDICTORS: dict[str, tuple[bool, str]] = {
    "exact": (False, "the true output length"),
    "lognormal": (True, "lognormal:SIGMA, round(o * exp(N(0, SIGMA^2))), range = one-sigma band"),
    "interval": (True, "interval:W, a range of relative width W containing the truth"),
    "bins": (
        True,
        "bins:K[:P], K quantile buckets: bucket mean and range (P: misclassified share)",
    ),
    "constant": (False, "the instance's mean output for everyone, range [min, max]"),
    "adversarial": (True, "adversarial:F, the longest quarter predicted o/F"),
    "file": (False, "predicted_output / output_range from the instance file"),
}


class PredictionError(ValueError):
    """A bad predictor spec or malformed predictions in an instance (one-line message)."""


def _frozen(values: Any) -> IntArray:
    arr = np.asarray(values, dtype=np.int64).copy()
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Predictions:
    """Per-request point prediction and range, aligned with an instance's requests.

    ``point``, ``lo`` and ``hi`` are read-only ``int64`` arrays with ``1 <= lo <= hi`` and
    ``point >= 1``; ``spec`` and ``seed`` say how they were made.
    """

    point: IntArray
    lo: IntArray
    hi: IntArray
    spec: str
    seed: int = 0

    @classmethod
    def create(
        cls, point: Any, lo: Any = None, hi: Any = None, spec: str = "custom", seed: int = 0
    ) -> Predictions:
        """Validated predictions; a missing range is the point itself."""
        p = _frozen(point)
        lo_arr = p if lo is None else _frozen(lo)
        hi_arr = p if hi is None else _frozen(hi)
        if not (p.shape == lo_arr.shape == hi_arr.shape) or p.ndim != 1:
            raise PredictionError(f"{spec}: predictions and ranges must be lists of equal length")
        if p.size and int(p.min()) < 1:
            raise PredictionError(f"{spec}: a predicted output must be a positive integer")
        if lo_arr.size and (int(lo_arr.min()) < 1 or bool((lo_arr > hi_arr).any())):
            raise PredictionError(f"{spec}: a range [lo, hi] must have 1 <= lo <= hi")
        return cls(p, lo_arr, hi_arr, spec, int(seed))

    @property
    def n(self) -> int:
        """Number of requests."""
        return int(self.point.size)

    def errors(self, instance: Instance) -> dict[str, float]:
        """Summary of the prediction error against the truth (for reports, never for policies)."""
        o = instance.output_len.astype(np.float64)
        ratio = self.point / o
        inside = (self.lo <= instance.output_len) & (instance.output_len <= self.hi)
        return {
            "mean_abs_log_error": float(np.abs(np.log(ratio)).mean()),
            "mean_relative_error": float((np.abs(self.point - o) / o).mean()),
            "under_predicted": float((self.point < instance.output_len).mean()),
            "range_coverage": float(inside.mean()),
        }


def parse_spec(spec: str) -> tuple[str, tuple[float, ...]]:
    """``"lognormal:0.5"`` -> ``("lognormal", (0.5,))``; one-line :class:`PredictionError` otherwise."""
    name, _, rest = spec.strip().partition(":")
    if name not in PREDICTORS:
        raise PredictionError(f"unknown predictor {spec!r}; known: {', '.join(PREDICTORS)}")
    takes, _ = PREDICTORS[name]
    args: list[float] = []
    for part in rest.split(":") if rest else []:
        try:
            value = float(part)
        except ValueError:
            raise PredictionError(f"predictor {spec!r}: {part!r} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise PredictionError(f"predictor {spec!r}: parameters must be finite and >= 0")
        args.append(value)
    if takes and not args:
        raise PredictionError(f"predictor {name} needs a parameter ({PREDICTORS[name][1]})")
    if not takes and args:
        raise PredictionError(f"predictor {name} takes no parameter (got {spec!r})")
    if name == "bins" and (args[0] < 1 or not float(args[0]).is_integer() or len(args) > 2):
        raise PredictionError(f"predictor {spec!r}: bins:K[:P] needs an integer K >= 1")
    if name == "bins" and len(args) == 2 and args[1] > 1:
        raise PredictionError(f"predictor {spec!r}: the misclassified share P must be in [0, 1]")
    if name == "adversarial" and args[0] < 1:
        raise PredictionError(f"predictor {spec!r}: the factor F must be at least 1")
    if name != "bins" and len(args) > 1:
        raise PredictionError(f"predictor {spec!r}: too many parameters")
    return name, tuple(args)


def make_predictions(instance: Instance, spec: str, seed: int = 0) -> Predictions:
    """Predictions for ``instance`` by the predictor ``spec`` (see the module docstring), seeded."""
    name, args = parse_spec(spec)
    o = instance.output_len
    rng = np.random.default_rng(seed)
    if name == "file":
        found = from_meta(instance)
        if found is None:
            raise PredictionError(
                f"{instance.source}: predictor 'file' needs 'predicted_output' or 'output_range' in the instance"
            )
        return found
    if name == "exact":
        return Predictions.create(o, o, o, spec, seed)
    if name == "lognormal":
        sigma = args[0]
        point = np.maximum(1, np.rint(o * np.exp(rng.normal(0.0, sigma, o.size)))).astype(np.int64)
        lo = np.maximum(1, np.floor(point * math.exp(-sigma))).astype(np.int64)
        hi = np.maximum(lo, np.ceil(point * math.exp(sigma))).astype(np.int64)
        return Predictions.create(point, lo, hi, spec, seed)
    if name == "interval":
        width = args[0]
        u = rng.random(o.size)
        lo = np.maximum(1, np.rint(o - u * width * o)).astype(np.int64)
        hi = np.maximum(o, np.rint(o + (1.0 - u) * width * o)).astype(np.int64)
        lo = np.minimum(lo, o)
        point = np.maximum(1, np.rint((lo + hi) / 2)).astype(np.int64)
        return Predictions.create(point, lo, hi, spec, seed)
    if name == "bins":
        return _bins(o, int(args[0]), args[1] if len(args) > 1 else 0.0, rng, spec, seed)
    if name == "constant":
        mean = max(1, round(float(o.mean())))
        n = o.size
        return Predictions.create(
            np.full(n, mean), np.full(n, int(o.min())), np.full(n, int(o.max())), spec, seed
        )
    # adversarial
    factor = args[0]
    long = o >= np.percentile(o, 75)
    point = np.where(long, np.maximum(1, np.rint(o / factor)), o).astype(np.int64)
    return Predictions.create(point, point, point, spec, seed)


def _bins(
    o: IntArray, k: int, wrong: float, rng: np.random.Generator, spec: str, seed: int
) -> Predictions:
    """``k`` quantile buckets of ``o``: each request is told its bucket's mean and range."""
    edges = np.unique(np.quantile(o, np.linspace(0, 1, k + 1)[1:-1], method="lower"))
    raw = np.searchsorted(edges, o, side="right")
    used, bucket = np.unique(raw, return_inverse=True)  # non-empty buckets only, renumbered
    count = used.size
    means = np.array(
        [max(1, round(float(o[bucket == b].mean()))) for b in range(count)], dtype=np.int64
    )
    los = np.array([int(o[bucket == b].min()) for b in range(count)], dtype=np.int64)
    his = np.array([int(o[bucket == b].max()) for b in range(count)], dtype=np.int64)
    told = bucket
    if wrong > 0 and count > 1:
        flip = rng.random(o.size) < wrong
        step = np.where(rng.random(o.size) < 0.5, -1, 1)
        moved = bucket + step
        moved = np.where(
            (moved < 0) | (moved >= count), bucket - step, moved
        )  # at an end: the other side
        told = np.where(flip, moved, bucket)
    return Predictions.create(means[told], los[told], his[told], spec, seed)


def with_predictions(instance: Instance, predictions: Predictions) -> Instance:
    """A copy of ``instance`` whose ``meta`` records the predictions (kept by the JSON form)."""
    if predictions.n != instance.n:
        raise PredictionError(
            f"{predictions.spec}: {predictions.n} predictions for {instance.n} requests"
        )
    meta = dict(instance.meta)
    meta["predicted_output"] = predictions.point.tolist()
    meta["output_range"] = [
        [int(a), int(b)] for a, b in zip(predictions.lo, predictions.hi, strict=True)
    ]
    meta["predictor"] = {"spec": predictions.spec, "seed": predictions.seed}
    return instance.replace(meta=meta)


def _aligned(instance: Instance, key: str, value: Any) -> list[Any]:
    """A per-request list from a list aligned with the requests or an object keyed by id."""
    src = instance.source
    if isinstance(value, Mapping):
        missing = [rid for rid in instance.ids if rid not in value]
        if missing:
            raise PredictionError(f"{src}: '{key}' has no entry for request '{missing[0]}'")
        return [value[rid] for rid in instance.ids]
    if isinstance(value, list):
        if len(value) != instance.n:
            raise PredictionError(
                f"{src}: '{key}' has {len(value)} entries for {instance.n} requests"
            )
        return value
    raise PredictionError(f"{src}: '{key}' must be a list or an object keyed by request id")


def _int(src: str, key: str, rid: str, value: Any) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not float(value).is_integer()
    ):
        raise PredictionError(
            f"{src}: request '{rid}': '{key}' must be an integer (got {json.dumps(value)})"
        )
    if value < 1:
        raise PredictionError(
            f"{src}: request '{rid}': '{key}' must be a positive integer (got {value})"
        )
    return int(value)


def from_meta(instance: Instance, extra: Mapping[str, Any] | None = None) -> Predictions | None:
    """The predictions an instance carries (``meta`` keys, or ``extra`` per-request values), if any.

    ``predicted_output``: one integer per request; ``output_range``: one ``[lo, hi]`` per request;
    either may be a list aligned with the requests or an object keyed by request id.  With only a
    range the point is its midpoint; with only a point the range is the point.
    """
    meta = dict(instance.meta)
    if extra:
        meta.update(extra)
    src = instance.source
    raw_point = meta.get("predicted_output")
    raw_range = meta.get("output_range")
    if raw_point is None and raw_range is None:
        return None
    point = lo = hi = None
    if raw_range is not None:
        pairs = _aligned(instance, "output_range", raw_range)
        lo_list, hi_list = [], []
        for rid, pair in zip(instance.ids, pairs, strict=True):
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise PredictionError(f"{src}: request '{rid}': 'output_range' must be [lo, hi]")
            a, b = _int(src, "output_range", rid, pair[0]), _int(src, "output_range", rid, pair[1])
            if a > b:
                raise PredictionError(
                    f"{src}: request '{rid}': 'output_range' [{a}, {b}] has lo > hi"
                )
            lo_list.append(a)
            hi_list.append(b)
        lo, hi = np.array(lo_list, dtype=np.int64), np.array(hi_list, dtype=np.int64)
    if raw_point is not None:
        values = _aligned(instance, "predicted_output", raw_point)
        point = np.array(
            [
                _int(src, "predicted_output", rid, v)
                for rid, v in zip(instance.ids, values, strict=True)
            ],
            dtype=np.int64,
        )
    if point is None:
        assert lo is not None and hi is not None
        point = np.maximum(1, np.rint((lo + hi) / 2)).astype(np.int64)
    info = meta.get("predictor")
    spec = str(info.get("spec", "file")) if isinstance(info, Mapping) else "file"
    seed = int(info.get("seed", 0)) if isinstance(info, Mapping) else 0
    return Predictions.create(point, lo, hi, spec if spec != "file" else "file", seed)
