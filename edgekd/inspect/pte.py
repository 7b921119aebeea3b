"""Read an ExecuTorch program (.pte) without running it: what runs in a delegate (XNNPACK) and what falls back
to ExecuTorch's portable kernels, the fall-back users complain about most.

Parsing only, with ExecuTorch's own deserializer: the program's instructions are KernelCalls (a portable /
optimized kernel, named by its operator) or DelegateCalls (a blob a backend compiled). XNNPACK blobs are
decoded with the flatbuffer schema ExecuTorch ships, so op counts cover what XNNPACK runs too.
Op names: "xnnpack.<node>" (XNNConv2d -> xnnpack.Conv2d) and "<namespace>.<op>.<overload>" for kernels
(aten::add.out -> aten.add.out); no ':' so the gate does not read them as custom ops.
"""

from __future__ import annotations

import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from edgekd.errors import EdgeKDError

XNNPACK = "XnnpackBackend"
_XNODE = re.compile(rb'"xnode_union_type"\s*:\s*"XNN(\w+)"')


def _program(p: Path):
    from edgekd.runtime.executorch_rt import quiet_import_logs

    quiet_import_logs()
    try:
        from executorch.exir._serialize._program import deserialize_pte_binary
    except ImportError:
        raise EdgeKDError(f"reading {p.name} needs ExecuTorch (pip install 'edgekd[executorch]')") from None
    try:
        return deserialize_pte_binary(p.read_bytes()).program
    except Exception as exc:  # a cut or foreign flatbuffer
        raise EdgeKDError(f"{p.name} is not a readable ExecuTorch program (truncated or corrupt: "
                          f"{type(exc).__name__})") from None


def _xnnpack_nodes(data: bytes, index: int) -> Counter[str]:
    """Node types of the index-th XNNPACK blob, decoded to JSON by the flatc that ExecuTorch bundles."""
    import executorch.backends.xnnpack as xnn
    from executorch.backends.xnnpack.serialization.xnnpack_graph_serialize import XNNHeader
    from executorch.exir._serialize._flatbuffer import _flatc_decompile
    from executorch.exir._serialize._program import _extract_delegate_payload

    blob = _extract_delegate_payload(data, XNNPACK, index)
    head = XNNHeader.from_bytes(blob[: XNNHeader.EXPECTED_LENGTH])
    graph = blob[head.flatbuffer_offset : head.flatbuffer_offset + head.flatbuffer_size]
    schema = Path(xnn.__file__).parent / "serialization" / "schema.fbs"
    with tempfile.TemporaryDirectory(prefix="edgekd-pte-") as d:
        (Path(d) / "graph.bin").write_bytes(graph)
        _flatc_decompile(d, str(schema), str(Path(d) / "graph.bin"))
        text = (Path(d) / "graph.json").read_bytes()  # not json.loads: the file holds bare inf for clamp bounds
    return Counter(m.decode() for m in _XNODE.findall(text))


def pte_ops(p: Path, program: Any = None) -> tuple[dict[str, int], dict[str, Any]]:
    """(op counts, delegation report) of a .pte file (`program`: its already deserialized Program)."""
    plan = (program or _program(p)).execution_plan[0]
    kernels: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for chain in plan.chains:
        for ins in chain.instructions:
            kind = type(ins.instr_args).__name__
            if kind == "KernelCall":
                op = plan.operators[ins.instr_args.op_index]
                kernels[".".join(filter(None, [op.name.replace("::", "."), op.overload]))] += 1
            elif kind == "DelegateCall":
                calls[plan.delegates[ins.instr_args.delegate_index].id] += 1
    delegated: Counter[str] = Counter()
    n_xnn = sum(1 for d in plan.delegates if d.id == XNNPACK)
    if n_xnn:
        data = p.read_bytes()
        for i in range(n_xnn):
            delegated.update({f"xnnpack.{k}": v for k, v in _xnnpack_nodes(data, i).items()})
    other = {f"{k}.call": v for k, v in calls.items() if k != XNNPACK}  # delegates whose blobs are opaque here
    ops = dict(sorted({**delegated, **other, **kernels}.items()))
    on, off = sum(delegated.values()) + sum(other.values()), sum(kernels.values())
    delegation = {
        "delegates": dict(calls), "delegated_ops": on, "portable_ops": off, "fallback_ops": dict(sorted(kernels.items())),
        "share": round(on / (on + off), 4) if on + off else None,
        "how": "read from the .pte: XNNPACK nodes (decoded from its blobs) vs ExecuTorch kernel calls outside any "
               "delegate (portable/optimized kernels on the CPU)",
    }
    return ops, delegation


def _io(plan, idx: list[int]) -> list[dict[str, Any]]:
    from executorch.exir.scalar_type import ScalarType

    out = []
    for i in idx:
        v = plan.values[i].val
        sizes = getattr(v, "sizes", None)
        dtype = getattr(v, "scalar_type", None)
        out.append({"name": f"value_{i}", "shape": list(sizes) if sizes is not None else [],
                    "dtype": ScalarType(dtype).name.lower() if dtype is not None else type(v).__name__})
    return out


def pte_info(p: Path) -> dict[str, Any]:
    program = _program(p)
    plan = program.execution_plan[0]
    ops, delegation = pte_ops(p, program)
    return {
        "format": "pte",
        "inputs": _io(plan, list(plan.inputs)),
        "outputs": _io(plan, list(plan.outputs)),
        "ops": ops,
        "delegation": delegation,
        "params": None,
        "macs": None,
        "macs_note": "not counted for .pte (the weights sit inside delegate blobs)",
        "methods": [e.name for e in program.execution_plan],
    }
