"""Strict TOML configuration files read into frozen dataclasses: the kiosk's and the hub's.

The dataclasses *are* the schema: unknown keys are refused with a "did you mean",
wrong types name the file and the key, missing required keys say which, a number's
range lives on its field (:func:`scanner.schema.within`), and NaN and infinity are
never a number. Every problem is one :class:`~scanner.errors.ConfigError` line.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from scanner.errors import ConfigError
from scanner.schema import Bounds
from scanner.smallfile import NotARegularFile, read_small_file

#: Fields of a dataclass that are not TOML keys (set by the loader, not the file).
INTERNAL_FIELDS = frozenset({"source_file"})
#: A field read by its own function: ``(value, file) -> converted value``.
Special = Callable[[Any, Path | None], Any]

_CONFIG_MAX = 1 << 20
"""Bytes read from a config file at most: a gate's config is a few KB."""


def where(file: Path | None, key: str) -> str:
    """``file: key``, how every message names the place of a problem."""
    return f"{file}: {key}" if file else key


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if tp is Path:
        return "path (string)"
    return getattr(tp, "__name__", str(tp))


class _WrongType(ConfigError):
    """A value of another type: a union tries its next member (never leaves this module
    as anything but a :class:`ConfigError`)."""


def _text(value: str, place: str, *, nul_ok: bool) -> str:
    if "\0" in value and not nul_ok:
        raise ConfigError(f"{place}: contains a NUL character (\\u0000)")
    return value


def convert(value: Any, tp: Any, file: Path | None, key: str, *, nul_ok: bool = False) -> Any:
    """``value`` of the TOML as the type ``tp`` (a dataclass is built from its table).

    Raises:
        ConfigError: ``value`` is not of that type.
    """
    origin = typing.get_origin(tp)
    place = where(file, key)
    bad = _WrongType(f"{place}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    if origin in (types.UnionType, typing.Union):
        for arg in typing.get_args(tp):
            if arg is type(None):
                continue
            try:
                return convert(value, arg, file, key, nul_ok=nul_ok)
            except _WrongType:
                continue
        raise bad
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise bad
    if origin is list:
        if not isinstance(value, list):
            raise bad
        (item,) = typing.get_args(tp)
        return [convert(v, item, file, f"{key}[{i}]", nul_ok=nul_ok) for i, v in enumerate(value)]
    return _scalar(value, tp, file, key, bad, nul_ok=nul_ok)


def _scalar(
    value: Any, tp: Any, file: Path | None, key: str, bad: ConfigError, *, nul_ok: bool
) -> Any:
    place = where(file, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            # TOML has nan and inf; every comparison with NaN is false, so it
            # would slip past any range check (and turn the repeat guard off).
            if not math.isfinite(value):
                raise ConfigError(f"{place}: expected a finite number, got {value}")
            return float(value)
        raise bad
    if tp is str:
        if isinstance(value, str):
            return _text(value, place, nul_ok=nul_ok)
        raise bad
    if tp is Path:
        if isinstance(value, str) and value:
            return _path(_text(value, place, nul_ok=False), file, place)
        raise bad
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise ConfigError(f"{place}: expected a table, got {type(value).__name__}")
        return build(tp, value, file, key + ".")
    raise bad  # pragma: no cover - a field type this loader does not know


def _path(value: str, file: Path | None, place: str) -> Path:
    try:
        path = Path(value).expanduser()
    except RuntimeError as err:  # "~nosuchuser/...": no home directory to put there
        raise ConfigError(f"{place}: cannot expand {value!r}: {err}") from err
    if not path.is_absolute() and file is not None:
        path = file.parent / path
    return path


def build(
    cls: type[Any],
    table: Mapping[str, Any],
    file: Path | None,
    prefix: str,
    special: Mapping[str, Special] | None = None,
) -> Any:
    """The dataclass ``cls`` from a TOML table; ``special`` fields are read by their function.

    Raises:
        ConfigError: an unknown or missing key, a wrong type, a number out of its bounds.
    """
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls) if f.name not in INTERNAL_FIELDS]
    for key in table:
        if key not in known:
            near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else f" (known keys: {', '.join(known)})"
            raise ConfigError(f"{where(file, prefix + key)}: unknown key{hint}")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in INTERNAL_FIELDS:
            continue
        if f.name not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where(file, prefix + f.name)}: required key is missing")
            continue
        if special is not None and f.name in special:
            kwargs[f.name] = special[f.name](table[f.name], file)
            continue
        key = prefix + f.name
        value = convert(
            table[f.name], hints[f.name], file, key, nul_ok=f.metadata.get("nul_ok", False)
        )
        bounds: Bounds | None = f.metadata.get("bounds")
        if bounds is not None and isinstance(value, int | float) and not isinstance(value, bool):
            problem = bounds.problem(value)
            if problem is not None:
                raise ConfigError(f"{where(file, key)}: {problem}")
        kwargs[f.name] = value
    return cls(**kwargs)


def _read_config_file(path: Path) -> bytes:
    """A regular file, at most 1 MiB: never a FIFO or a device that blocks or never ends."""
    try:
        data, _ = read_small_file(path, _CONFIG_MAX)
    except NotARegularFile:
        raise ConfigError(f"{path}: cannot read config (not a regular file)") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror})") from err
    if len(data) > _CONFIG_MAX:
        raise ConfigError(f"{path}: cannot read config (larger than 1 MiB)")
    return data


def read_toml(path: Path) -> dict[str, Any]:
    """The tables of a TOML config file.

    Raises:
        ConfigError: unreadable, not a regular file, over 1 MiB, or not valid TOML.
    """
    raw = _read_config_file(path)
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    except RecursionError as err:  # tomllib recurses once per nested array or table
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from err
