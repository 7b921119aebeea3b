"""What derive does when the student stays far above the asked ratio: fail, or warn loudly, never stay quiet.

A user who asks for a tenth of the teacher and gets the teacher's size back has been misled. When the
layers that did not shrink alone hold more than the allowed cost (a GRU: Torch-Pruning 1.6.1 has no
pruner for its hidden size), no ratio search can fix it: one-line EdgeKDError naming them. Otherwise
(e.g. the channel floor of round_to) the student is returned with a warning recorded in its result.
"""

from __future__ import annotations

SHORTFALL = 1.5  # achieved / asked ratio above which derive fails or warns


def check_shortfall(teacher, model, x, *, by: str, ratio: float, achieved: float, base: int) -> str | None:
    """None when achieved <= SHORTFALL x ratio; else raise (stuck layers explain it) or return the warning."""
    if achieved <= SHORTFALL * ratio:
        return None
    from edgekd.errors import EdgeKDError

    stuck = unshrunk_layers(teacher, model, x, by=by)
    stuck_cost = sum(c for _, _, c in stuck)
    what = "MACs" if by == "macs" else "parameters"
    head = (f"could not derive a student at {ratio:g} of the teacher's {what}: the smallest reached is "
            f"{achieved:.3f} ({achieved / ratio:.1f}x the asked size)")
    if stuck and stuck_cost > SHORTFALL * ratio * base:
        big = [r for r in stuck if r[2] >= 0.01 * base] or stuck[:1]  # skip the (unprunable) output layer etc.
        names = ", ".join(f"{n} ({t}, {c / max(1, base):.0%} of the teacher's {what})" for n, t, c in big[:3])
        raise EdgeKDError(f"{head}: {names} cannot be shrunk ({_why(stuck)}); give a larger ratio or "
                          "name a smaller --student")
    left = "; ".join(f"{n} ({t})" for n, t, _ in stuck[:3])
    return (f"{head}: the student is far larger than asked"
            + (f" (left whole: {left})" if left else "")
            + "; a likely cause is round_to, which keeps at least that many channels per layer: give a larger "
              "ratio or a smaller --round-to")


def unshrunk_layers(teacher, model, x, *, by: str) -> list[tuple[str, str, int]]:
    """(name, type, cost) of the parameterised layers whose cost did not fall, by name, largest first."""
    from edgekd.models.measure import count_ops

    def costs(m) -> dict[str, tuple[str, int]]:
        _, _, macs, params = count_ops(m, x, layer_wise=True)
        layer = macs if by == "macs" else params
        return {n: (type(mod).__name__, int(layer.get(mod) or 0)) for n, mod in m.named_modules()
                if n and any(True for _ in mod.parameters(recurse=False))}

    before, after = costs(teacher), costs(model)
    out = [(n, t, c) for n, (t, c) in after.items() if c > 0 and n in before and c >= before[n][1]]
    return sorted(out, key=lambda r: r[2], reverse=True)


_RECURRENT = {"GRU", "RNN", "LSTM", "GRUCell", "RNNCell", "LSTMCell"}


def _why(stuck) -> str:
    if any(t in _RECURRENT for _, t, _ in stuck):
        return ("Torch-Pruning 1.6.1 cannot prune a recurrent layer's hidden size: it has no GRU/RNN pruner "
                "and its LSTM one fails, so edgekd leaves them whole")
    return "Torch-Pruning found no channels it may remove there: an unsupported layer type, or one tied to the output"
