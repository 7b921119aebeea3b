"""Derived students, teacher-assistant chains and structured / unstructured pruning with KD recovery.

Entry points (heavy imports happen inside them):
    derive(teacher, *, ratio, by, mode, example_input, round_to) -> DeriveResult
    prune(model, teacher, data, *, ratio, importance, scope, steps, recover_epochs, unstructured) -> PruneResult
    plan_chain(teacher, student_ratio, *, probe, ...) -> ChainPlan ; run_chain(teacher, data, plan, ...) -> ChainResult
"""

from __future__ import annotations

from typing import Any

__all__ = ["derive", "DeriveResult", "prune", "PruneResult", "plan_chain", "run_chain", "ChainPlan", "ChainResult"]


def __getattr__(name: str) -> Any:  # lazy: `import edgekd.prune` stays cheap for the CLI
    if name in ("derive", "DeriveResult"):
        from edgekd.prune import derive as _m
    elif name in ("prune", "PruneResult"):
        from edgekd.prune import structured as _m
    elif name in ("plan_chain", "run_chain", "ChainPlan", "ChainResult"):
        from edgekd.prune import chain as _m
    else:
        raise AttributeError(name)
    return getattr(_m, name)
