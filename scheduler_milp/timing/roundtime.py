"""The round-time model: how many seconds one round of the plan takes (docs/timing.md).

``duration(t) = c0 + c_prefill * P(t) + c_decode * |R(t)| + c_kv * K(t)``, where ``P(t)`` is the
prompt tokens prefilled in round ``t`` (the requests starting in ``t``; in an online execution
also the restarts), ``|R(t)|`` the number of running requests and ``K(t)`` the KV tokens they hold
(``s_i + k`` for a request in its ``k``-th round, without block padding).  A round in which nothing
runs lasts ``c0``.  The unit model (``c0 = 1``, the others 0) makes every round last one second, so
every number in seconds equals the same number in rounds: it is the default.

A model comes from :func:`parse_round_time`: ``unit``, the name of a shipped preset
(``scheduler_milp/data/roundtime/*.json``, each with its source and fit), ``c0=..,c_prefill=..``
(missing coefficients are 0), or a JSON or TOML file holding those keys.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: the coefficient names, in the order of the formula
COEFFICIENTS = ("c0", "c_prefill", "c_decode", "c_kv")


class RoundTimeError(ValueError):
    """A round-time specification that cannot be used (one-line message)."""


@dataclass(frozen=True)
class RoundTime:
    """Seconds per round: ``c0 + c_prefill * P + c_decode * R + c_kv * K`` (all ``>= 0``)."""

    c0: float = 1.0
    c_prefill: float = 0.0
    c_decode: float = 0.0
    c_kv: float = 0.0
    name: str = "unit"
    #: what the preset file says about itself (model, GPU, sources, fit); empty for user models
    info: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for key in COEFFICIENTS:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RoundTimeError(f"round time: {key} must be a number (got {value!r})")
            if not math.isfinite(value) or value < 0:
                raise RoundTimeError(
                    f"round time: {key} must be finite and non-negative (got {value})"
                )
        if self.c0 + self.c_decode + self.c_kv <= 0:
            raise RoundTimeError("round time: a round with one running request would take 0 s")

    @property
    def is_unit(self) -> bool:
        """True for the unit model, whose seconds are rounds."""
        return (self.c0, self.c_prefill, self.c_decode, self.c_kv) == (1.0, 0.0, 0.0, 0.0)

    def duration(self, prefill: Any, running: Any, kv: Any) -> Any:
        """Seconds of rounds with these ``P``, ``|R|`` and ``K`` (numbers or numpy arrays)."""
        return self.c0 + self.c_prefill * prefill + self.c_decode * running + self.c_kv * kv

    def busy_floor(self, min_prompt: int = 1) -> float:
        """The least a round in which something runs can last: one request holding ``min_prompt + 1`` tokens."""
        return self.c0 + self.c_decode + self.c_kv * (min_prompt + 1)

    def coefficients(self) -> dict[str, float]:
        """``{c0, c_prefill, c_decode, c_kv}``."""
        return {key: float(getattr(self, key)) for key in COEFFICIENTS}

    def to_dict(self) -> dict[str, Any]:
        """The form written into plan files and tables: name and coefficients."""
        return {"name": self.name, **self.coefficients()}

    def describe(self) -> str:
        """One line: the name and the formula with its coefficients."""
        if self.is_unit:
            return "unit (every round lasts 1 s: seconds are rounds)"
        c = self.coefficients()
        return (
            f"{self.name}: {c['c0']:.4g} + {c['c_prefill']:.4g} P + {c['c_decode']:.4g} R "
            f"+ {c['c_kv']:.4g} K seconds per round"
        )


UNIT = RoundTime()


def _data_dir() -> Any:
    from importlib import resources

    return resources.files("scheduler_milp") / "data" / "roundtime"


def preset_names() -> list[str]:
    """The shipped presets (file names in ``scheduler_milp/data/roundtime/`` without ``.json``)."""
    folder = _data_dir()
    if not folder.is_dir():
        return []
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


def _looks_like_coefficient(key: str) -> bool:
    return key.startswith("c_") or (key[:1] == "c" and key[1:].isdigit())


def from_mapping(data: Mapping[str, Any], name: str, source: str) -> RoundTime:
    """A model from a mapping holding some of ``c0, c_prefill, c_decode, c_kv`` (others 0)."""
    if not isinstance(data, Mapping):
        raise RoundTimeError(f"{source}: a round-time model must be an object of coefficients")
    coefficients = data.get("coefficients", data)
    # descriptive keys (name, sources, fit, ...) may sit next to the coefficients; a key that
    # looks like a coefficient but is none (a typo) is an error, never silently 0
    unknown = [
        k
        for k in coefficients
        if k not in COEFFICIENTS and (coefficients is not data or _looks_like_coefficient(k))
    ]
    if unknown:
        raise RoundTimeError(
            f"{source}: unknown round-time key {unknown[0]!r} (known: {', '.join(COEFFICIENTS)})"
        )
    values = {k: coefficients.get(k, 0.0) for k in COEFFICIENTS}
    info = {k: v for k, v in data.items() if k not in COEFFICIENTS}
    return RoundTime(**values, name=str(data.get("name", name)), info=info)


def load_preset(name: str) -> RoundTime:
    """A shipped preset by name; the error lists the known names."""
    if name == "unit":
        return UNIT
    if name not in preset_names():
        raise RoundTimeError(
            f"no round-time preset {name!r}; known: unit, {', '.join(preset_names())}"
        )
    text = (_data_dir() / f"{name}.json").read_text()
    return from_mapping(json.loads(text), name, f"preset {name}")


def _parse_pairs(text: str) -> RoundTime:
    values: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise RoundTimeError(f"round time: expected KEY=VALUE, got {part.strip()!r}")
        key, raw = (x.strip() for x in part.split("=", 1))
        if key not in COEFFICIENTS:
            raise RoundTimeError(
                f"round time: unknown coefficient {key!r} (known: {', '.join(COEFFICIENTS)})"
            )
        try:
            values[key] = float(raw)
        except ValueError:
            raise RoundTimeError(f"round time: {key} must be a number (got {raw!r})") from None
    if not values:
        raise RoundTimeError("round time: no coefficients given")
    c = [values.get(k, 0.0) for k in COEFFICIENTS]
    return RoundTime(c[0], c[1], c[2], c[3], name="custom")


def load_round_time_file(path: str | Path) -> RoundTime:
    """A model from a JSON or TOML file of coefficients (``name`` optional)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise RoundTimeError(f"{p}: cannot read: {err}") from None
    try:
        if p.suffix.lower() == ".toml":
            data: Any = tomllib.loads(raw.decode())
        else:
            data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise RoundTimeError(f"{p}: not a round-time file: {err}") from None
    return from_mapping(data, p.stem, str(p))


def parse_round_time(spec: str | RoundTime | None) -> RoundTime:
    """``unit`` | a preset name | ``c0=..,c_prefill=..,c_decode=..,c_kv=..`` | a ``.json``/``.toml`` file."""
    if spec is None:
        return UNIT
    if isinstance(spec, RoundTime):
        return spec
    text = spec.strip()
    if "=" in text:
        return _parse_pairs(text)
    if text == "unit" or text in preset_names():
        return load_preset(text)
    if text.lower().endswith((".json", ".toml")) or Path(text).is_file():
        return load_round_time_file(text)
    raise RoundTimeError(
        f"round time {text!r}: not a preset (unit, {', '.join(preset_names())}), "
        "not c0=..,c_prefill=..,c_decode=..,c_kv=.. and not a .json/.toml file"
    )
