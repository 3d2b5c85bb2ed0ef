"""Typed method parameters: one frozen dataclass per method, parsed from ``--param key=value``.

A method declares ``@dataclass(frozen=True) class RepackParams(MethodParams)`` with typed fields
and defaults, and reads ``RepackParams.of(options)``.  The registry parses the same class before
the method runs, so an unknown key or a value of the wrong type is a one-line
:class:`ParameterError` naming the valid keys, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, Self

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ParameterError(ValueError):
    """An unknown method parameter or a value of the wrong type (one-line message)."""


def _coerce(method: str, key: str, value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` (``int``, ``float``, ``bool``, ``str``, tuples, ``X | None``)."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(method, key, value, args[0])
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, int | float) and value in (0, 1):
                return bool(value)
            text = str(value).strip().lower()
            if text in _TRUE or text in _FALSE:
                return text in _TRUE
            raise ValueError
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value) if not isinstance(value, str) else int(value.strip())
        if hint is float:
            number = float(value)
            if number != number:  # NaN
                raise ValueError
            return number
        if hint is str:
            return str(value)
        if origin is tuple:
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(x).strip() for x in items)
    except (TypeError, ValueError):
        pass
    else:
        return value
    name = getattr(hint, "__name__", str(hint))
    raise ParameterError(f"{method}: parameter {key}={value!r} is not a valid {name}")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """The resolved field types of a parameter class (resolved once per class)."""
    return typing.get_type_hints(cls)


@dataclasses.dataclass(frozen=True)
class MethodParams:
    """Base of the per-method parameter classes (a method with no knobs uses it as is)."""

    @classmethod
    def names(cls) -> list[str]:
        """The valid parameter names."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | MethodParams | None, method: str = "") -> Self:
        """Validated parameters from ``raw`` (keys of this class only, values coerced to their types)."""
        if isinstance(raw, cls):
            return raw
        raw = (
            {}
            if raw is None
            else dict(raw)
            if isinstance(raw, Mapping)
            else dataclasses.asdict(raw)
        )
        hints = _hints(typing.cast(type, cls))
        valid = cls.names()
        unknown = sorted(k for k in raw if k not in valid)
        if unknown:
            label = method or cls.__name__
            allowed = ", ".join(valid) if valid else "none"
            raise ParameterError(
                f"{label}: unknown parameter {', '.join(map(repr, unknown))}; valid: {allowed}"
            )
        values = {k: _coerce(method or cls.__name__, k, v, hints[k]) for k, v in raw.items()}
        return cls(**values)

    @classmethod
    def of(cls, options: Any) -> Self:
        """The parameters of a :class:`~scheduler_milp.model.result.SolveOptions`."""
        return cls.parse(options.params)
