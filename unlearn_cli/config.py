"""YAML is data, never code: safe loading, unknown keys rejected, every problem reported at once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unlearn_cli.errors import ConfigError


def load_yaml(path: str | Path) -> Any:
    """Parse `path` with `yaml.safe_load`; python tags and other non-data constructs fail."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(path), [f"cannot read it ({e})"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(str(path), [f"{where}not plain YAML data ({problem})"]) from None


def type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_fields(
    data: Any, schema: Mapping[str, type | tuple[type, ...]], where: str, problems: list[str]
) -> dict:
    """Check a mapping against `schema` (key -> accepted type); append problems, return it.

    A key missing from `data` is fine (the caller applies defaults); unknown keys and wrong
    types are problems. Ints are accepted where floats are.
    """
    if not isinstance(data, dict):
        problems.append(f"{where}: expected a mapping, got {type_name(data)}")
        return {}
    for key, value in data.items():
        if key not in schema:
            problems.append(f"{where}: unknown key {key!r} (known: {', '.join(schema)})")
            continue
        expected = schema[key]
        ok = (
            value is None
            or (expected is float and is_number(value))
            or (expected is int and is_int(value))
            or (expected not in (int, float) and isinstance(value, expected))
        )
        if not ok:
            want = getattr(expected, "__name__", str(expected))
            problems.append(f"{where}.{key}: expected {want}, got {type_name(value)} {value!r}")
    return data


def as_text(value: Any) -> str | None:
    """Dates that YAML parsed stay ISO strings in metadata."""
    if value is None:
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


MAX_COUNT = 2**31 - 1  # epochs, steps, batch sizes, samples: beyond it no loop or tensor works
MAX_SEED = 2**32 - 1  # the seeds every random generator we use accepts (0 to 2^32 - 1)


def check_seed(seed: Any, name: str = "seed") -> None:
    """A seed from 0 to MAX_SEED, or a UsageError saying so."""
    from unlearn_cli.errors import UsageError

    if is_int(seed) and not 0 <= seed <= MAX_SEED:
        raise UsageError(f"must be a whole number from 0 to {MAX_SEED}, got {seed}", name)


def check_settings(
    settings: Any,
    positive: tuple[str, ...] = (),
    minimum: Mapping[str, int] | None = None,
    choices: Mapping[str, tuple[str, ...]] | None = None,
) -> None:
    """Each named attribute of `settings` in its range, or a UsageError naming the first that is
    not (by its setting name; the caller's user may know it as a flag or a YAML key)."""
    import math

    from unlearn_cli.errors import UsageError

    for name in (*positive, *(minimum or {})):
        value = getattr(settings, name)
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"must be a finite number, got {value}", name)
        if is_int(value) and value > MAX_COUNT:
            raise UsageError(f"must be at most {MAX_COUNT}, got {value}", name)
    check_seed(getattr(settings, "seed", None))
    for name in positive:
        if not getattr(settings, name) > 0:
            raise UsageError(f"must be positive, got {getattr(settings, name)}", name)
    for name, floor in (minimum or {}).items():
        if getattr(settings, name) < floor:
            raise UsageError(f"must be at least {floor}, got {getattr(settings, name)}", name)
    for name, allowed in (choices or {}).items():
        if getattr(settings, name) not in allowed:
            options = ", ".join(allowed[:-1]) + f" or {allowed[-1]}"
            raise UsageError(f"{getattr(settings, name)!r}: use {options}", name)
