"""Per-environment hyperparameter presets: one TOML file, one table per (algorithm, env).

    [ppo."Pendulum-v1"]
    source = "rl-zoo hyperparams/ppo.yml, Pendulum-v1 (without gSDE)"
    total_steps = 100_000
    gamma = 0.9

An entry holds only the fields that differ from the algorithm's config
dataclass defaults, plus a required ``source``: the paper, the rl-zoo or
CleanRL file, or "tuned here: <command>". ``--env ID`` picks the entry
``[ALGO."ID"]``; a flag given on the command line overrides the entry; an env
without an entry runs the dataclass defaults (CartPole-v1 has none: its
defaults are the dataclass defaults). The runner records the entry and every
resolved value in config.json. Python's ``tomllib`` reads the file, so no new
dependency; every value is checked exactly as the flag of the same name is.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from rlsuite.cli import UsageError, check_value, field_kinds
from rlsuite.records import read_toml

ROOT = Path(__file__).resolve().parent.parent
PRESETS_FILE = ROOT / "presets.toml"


@dataclass(frozen=True)
class Preset:
    file: Path
    algo: str
    env_id: str
    source: str
    values: dict
    """field -> value, typed as the config dataclass types it"""

    @property
    def entry(self) -> str:
        return f'[{self.algo}."{self.env_id}"]'

    def record(self) -> dict:
        """What config.json keeps of the preset."""
        try:
            file = str(self.file.resolve().relative_to(ROOT))
        except ValueError:
            file = str(self.file)
        return {"file": file, "entry": self.entry, "source": self.source,
                "values": {k: list(v) if isinstance(v, tuple) else v for k, v in self.values.items()}}


def read_presets(path: Path) -> dict:
    """The whole file as a dict; an unreadable or malformed file is one UsageError line."""
    return read_toml(path, UsageError, "argument --presets: ")


def _typed(value, kind: str):
    """A TOML value as the field's kind, or raise ValueError saying what was expected."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and is_number and math.isfinite(value):
        return float(value)
    if kind == "optional_float":
        if isinstance(value, str) and value.lower() == "none":
            return None
        if is_number and math.isfinite(value):
            return float(value)
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "int_tuple" and isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    expected = {"bool": "true or false", "int": "an integer", "float": "a finite number",
                "optional_float": 'a finite number or "none"', "str": "a string",
                "int_tuple": "a list of integers like [64, 64]"}[kind]
    raise ValueError(f"expected {expected}, got {value!r}")


def check_entry(path: Path, algo: str, env_id: str, table, config_cls) -> Preset:
    """One entry, checked field by field; any problem is one UsageError line naming the file
    and the entry."""
    where = f'{path} [{algo}."{env_id}"]'
    if not isinstance(table, dict):
        raise UsageError(f"{where}: must be a table of {config_cls.__name__} fields")
    source = table.get("source")
    if not isinstance(source, str) or not source.strip():
        raise UsageError(f'{where}: needs source = "..." (a paper, the rl-zoo or CleanRL file, '
                         'or "tuned here: <command>")')
    kinds = field_kinds(config_cls)
    values = {}
    for name, value in table.items():
        if name == "source":
            continue
        if name not in kinds:
            raise UsageError(f"{where}: unknown field {name!r}; {config_cls.__name__} fields: "
                             f"{', '.join(kinds)}")
        try:
            values[name] = _typed(value, kinds[name])
        except ValueError as exc:
            raise UsageError(f"{where}: {name}: {exc}") from None
        try:
            check_value(name, values[name], kinds[name])
        except UsageError as exc:
            raise UsageError(f"{where}: {name}: {str(exc).split(': ', 1)[-1]}") from None
    defaults = {f.name: getattr(config_cls(), f.name) for f in dataclasses.fields(config_cls)}
    validate = getattr(config_cls(**{**defaults, **values}), "validate", None)
    if validate is not None:
        try:
            validate()
        except ValueError as exc:
            raise UsageError(f"{where}: {exc}") from None
    return Preset(Path(path), algo, env_id, source.strip(), values)


def load_preset(path, algo: str, env_id: str, config_cls) -> Preset | None:
    """The checked entry [algo."env_id"] of the presets file, or None if it has none
    (the documented fallback: the dataclass defaults)."""
    data = read_presets(path)
    table = data.get(algo, {})
    if not isinstance(table, dict) or env_id not in table:
        return None
    return check_entry(Path(path), algo, env_id, table[env_id], config_cls)
