"""The one registry of the suite's algorithms: name -> module, config class, runner.

Every tool that needs the list (the orchestrator, the aggregator,
docs/generate.py, policy_evolution.py, the studies) reads it here, in this
order, which is also the order of every table and plot.

The registry holds names only. ``module()`` and ``config_class()`` import the
algorithm file on demand, from the repository root, when a tool asks; nothing
in ``rlsuite`` imports an algorithm at import time, and the aggregator, which
reads only the protocol's files, never calls them.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Algorithm:
    name: str
    """the protocol's name: CLI, results folders, the CSV ``algo`` column"""
    title: str
    """how the docs and reports call it"""
    config: str
    """the name of its config dataclass in its module"""

    @property
    def module_name(self) -> str:
        return self.name

    @property
    def runner(self) -> str:
        """The runner script, relative to the repository root."""
        return f"{self.name}_benchmark.py"

    def module(self):
        """Import the algorithm file (from the repository root)."""
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        return importlib.import_module(self.module_name)

    def config_class(self):
        return getattr(self.module(), self.config)


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a for a in (
        Algorithm("policy_gradient", "REINFORCE", "PolicyGradientConfig"),
        Algorithm("a2c", "A2C", "A2CConfig"),
        Algorithm("a3c", "A3C", "A3CConfig"),
        Algorithm("ppo", "PPO", "PPOConfig"),
        Algorithm("trpo", "TRPO", "TRPOConfig"),
    )
}
NAMES: tuple[str, ...] = tuple(ALGORITHMS)


def get(name: str) -> Algorithm:
    """The registry entry; KeyError names the known algorithms."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise KeyError(f"unknown algorithm {name!r}; known: {', '.join(NAMES)}") from None


def rank(name: str) -> tuple[int, str]:
    """Sort key: registry order, unknown names after, alphabetically."""
    return (NAMES.index(name), "") if name in ALGORITHMS else (len(NAMES), name)
