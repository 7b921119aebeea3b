"""`edgekd --version` and `edgekd doctor`: what is installed, read from package metadata (nothing heavy is imported)."""
from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import sys

import typer

# (label, distributions to try) for the converters and runtimes edgekd drives.
COMPONENTS: list[tuple[str, tuple[str, ...]]] = [
    ("torch", ("torch",)), ("onnx", ("onnx",)), ("onnxruntime", ("onnxruntime",)),
    ("litert-torch", ("litert-torch",)), ("ai-edge-litert", ("ai-edge-litert",)),
    ("ai-edge-quantizer", ("ai-edge-quantizer",)), ("torch-pruning", ("torch-pruning",)),
    ("tensorflow", ("tensorflow-cpu", "tensorflow")), ("onnx2tf", ("onnx2tf",)),
    ("transformers", ("transformers",)), ("optimum-onnx", ("optimum-onnx",)),
    ("onnxruntime-qnn", ("onnxruntime-qnn",)), ("ethos-u-vela", ("ethos-u-vela",)),
    ("executorch", ("executorch",)), ("coremltools", ("coremltools",)),
]


def dist_version(*names: str) -> str | None:
    for n in names:
        try:
            return md.version(n)
        except md.PackageNotFoundError:
            continue
    return None


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"edgekd": dist_version("edgekd")}
    for label, names in COMPONENTS:
        out[label] = dist_version(*names)
    return out


def version_text() -> str:
    return "\n".join(f"{k} {v or 'not installed'}" for k, v in versions().items())


def checks() -> list[dict]:
    """One row per optional part: name, ok, detail, and the command that enables it."""
    def row(name, ok, detail, fix):
        return {"name": name, "ok": bool(ok), "detail": detail, "enable": fix}
    rows = []
    tf, o2t = dist_version("tensorflow-cpu", "tensorflow"), dist_version("onnx2tf")
    rows.append(row("TensorFlow/onnx2tf", tf and o2t, f"tensorflow {tf or '-'}, onnx2tf {o2t or '-'}", "pip install 'edgekd[tf]'"))
    tr, opt = dist_version("transformers"), dist_version("optimum-onnx")
    rows.append(row("Hugging Face", tr and opt, f"transformers {tr or '-'}, optimum-onnx {opt or '-'}", "pip install 'edgekd[hf]'"))
    et = dist_version("executorch")
    rows.append(row("ExecuTorch .pte", et, f"executorch {et or '-'}", "pip install 'edgekd[executorch]'"))
    cm = dist_version("coremltools")
    rows.append(row("Core ML", cm, f"coremltools {cm or '-'} (packages are written and validated; none run on Linux)",
                    "pip install 'edgekd[coreml]'"))
    gg, acc = dist_version("gguf"), dist_version("accelerate")
    rows.append(row("Decoder LMs (GGUF)", tr and opt and gg, f"gguf {gg or '-'}, accelerate {acc or '-'}",
                    "pip install 'edgekd[decoder]'"))
    q = dist_version("onnxruntime-qnn")
    rows.append(row("NPU: Qualcomm QNN", q, f"onnxruntime-qnn {q or '-'}", "pip install 'edgekd[npu]'"))
    v = dist_version("ethos-u-vela")
    vela_bin = shutil.which("vela") or shutil.which("vela", path=os.path.dirname(sys.executable))
    rows.append(row("NPU: Arm Vela", v and vela_bin, f"ethos-u-vela {v or '-'}, vela {'on PATH' if vela_bin else 'not on PATH'}", "pip install 'edgekd[npu]'"))
    try:
        from edgekd.emulate.env import arm_env_available, arm_home
        arm_ok, home = arm_env_available(), str(arm_home())
    except Exception as exc:  # a broken emulation setup is reported, not raised
        arm_ok, home = False, f"check failed: {exc}"
    qemu = shutil.which("qemu-aarch64")
    rows.append(row("ARM emulation", arm_ok, f"qemu-aarch64 {'found' if qemu else 'missing'}, env {home}", "make arm-env (or edgekd arm-env)"))
    rows.append(row("adb", shutil.which("adb"), shutil.which("adb") or "adb not on PATH", "apt install adb"))
    rows.append(row("ssh", shutil.which("ssh"), shutil.which("ssh") or "ssh not on PATH", "apt install openssh-client"))
    return rows


def doctor_cmd(json_out: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Which optional parts are installed and usable, and the command that enables each."""
    rows = checks()
    if json_out:
        import json
        print(json.dumps({"versions": versions(), "checks": rows}, indent=2))
        return
    for r in rows:
        state = "ok" if r["ok"] else "missing"
        extra = "" if r["ok"] else f"  -> {r['enable']}"
        print(f"{r['name']:<20} {state:<8} {r['detail']}{extra}")
