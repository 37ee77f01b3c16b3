"""Reading one ``FAUSTAPP_*`` variable as a bounded number, shared by the settings modules.

Here rather than in ``settings`` so that ``kafka_settings``, which ``settings`` composes, can
use the same checks and the same error without importing its own user.
"""

from __future__ import annotations

from collections.abc import Mapping


class SettingsError(ValueError):
    """A ``FAUSTAPP_*`` variable holds a value faustapp cannot run with."""


def env_int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    """An integer in ``[low, high]``, or ``default`` when unset or blank: one message for all."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is out of range [{low}, {high}]")
    return value


def env_float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    """A number in ``[low, high]`` (NaN refused), or ``default`` when unset or blank."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:  # NaN fails too
        raise SettingsError(f"{name}={value} is out of range [{low}, {high}]")
    return value
