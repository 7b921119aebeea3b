"""Derived students, teacher-assistant chains and structured / unstructured pruning with KD recovery.

Entry points (heavy imports happen inside them):
    derive(teacher, *, ratio, by, mode, example_input, round_to) -> DeriveResult
    prune(model, teacher, data, *, ratio, importance, scope, steps, recover_epochs, unstructured) -> PruneResult
    plan_chain(teacher, student_ratio, *, probe, ...) -> ChainPlan ; run_chain(teacher, data, plan, ...) -> ChainResult
"""

from __future__ import annotations

from typing import Any

__all__ = ["derive", "DeriveResult", "prune", "PruneResult", "plan_chain", "run_chain", "ChainPlan", "ChainResult"]


_WHERE = {"derive": "derived", "DeriveResult": "derived", "prune": "structured", "PruneResult": "structured",
          "plan_chain": "chain", "run_chain": "chain", "ChainPlan": "chain", "ChainResult": "chain"}


def __getattr__(name: str) -> Any:  # lazy: `import edgekd.prune` stays cheap for the CLI
    import importlib

    if name not in _WHERE:
        raise AttributeError(f"module 'edgekd.prune' has no attribute {name!r}")
    return getattr(importlib.import_module(f"edgekd.prune.{_WHERE[name]}"), name)
