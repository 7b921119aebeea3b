"""Does an fp16 TFLite file compute in fp16 on this CPU, or in fp32? One note for the quantize report.

What LiteRT's XNNPACK delegate does with a file whose weights are FLOAT16 (+ DEQUANTIZE to fp32), read in
its sources (ai-edge-litert 2.x, tflite/delegates/xnnpack/xnnpack_delegate.cc and README.md; XNNPACK
src/xnnpack/hardware-config.h):

- by default, fp16 weights are converted to fp32 when the delegate is prepared (static DEQUANTIZE nodes are
  unpacked, or the weights reach XNNPACK's f32_f16 operators, which convert them to fp32 at creation) and the
  graph runs in fp32 arithmetic;
- XNNPACK switches to fp16 arithmetic by itself only when both hold: the CPU has native fp16 arithmetic *as
  XNNPACK counts it* (`xnn_is_f16_native_supported`: ARM/ARM64 with the ARMv8.2 FP16 extension, RISC-V with
  fp16 vectors; never x86, even with AVX512-FP16), and the file's `reduced_precision_support` metadata allows
  fp16 inference with fp16 accumulation. (A force-fp16 delegate flag exists; edgekd does not set it.)

So the accuracy an fp16 file loses against its float file comes from the weights rounded to fp16 (relative
error at most 2**-11 each), and what differs between two CPUs without fp16 arithmetic is only their fp32
kernels (vector width, FMA, summation order): near-tied predictions can flip either way.

Checked with ai-edge-litert 2.3.0 on an emulated Cortex-A76 (asimdhp), tests/test_quantize.py: an
ai-edge-quantizer fp16 file matches the x86 host to 1.4e-6 (fp32 both sides); the same file with
`reduced_precision_support = fp16accfp16` differs by 1e-2 and runs ~22 % fewer instructions (fp16 arithmetic).
"""

from __future__ import annotations

import platform
from pathlib import Path

REDUCED_PRECISION_KEY = "reduced_precision_support"  # tflite/converter/tools/optimize/reduced_precision_metadata.h

# /proc/cpuinfo names of native fp16 *arithmetic* (not just F16C conversion, which x86 has had since Ivy Bridge).
X86_FP16_FLAGS = ("avx512_fp16", "avx512fp16")  # the Linux kernel spells it avx512_fp16
ARM_FP16_FLAGS = ("asimdhp", "fphp")  # aarch64 Features: half-precision SIMD / scalar arithmetic
RISCV_FP16_FLAGS = ("zvfh",)  # vector fp16 (the `isa` line, extensions joined by '_')


def flags_from_cpuinfo(text: str) -> set[str]:
    """CPU flags named in /proc/cpuinfo text: x86 `flags`, ARM `Features`, RISC-V `isa` (split at '_')."""
    flags: set[str] = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if not sep:
            continue
        if key in ("flags", "features"):
            flags.update(value.split())
        elif key in ("isa", "isa-ext"):
            for word in value.split():
                flags.update(word.lower().split("_"))
    return flags


def cpu_flags() -> tuple[str, set[str]]:
    """(machine, CPU flags) of this host: platform.machine() and the CPU flags in /proc/cpuinfo.

    Outside Linux the flags are empty, except on Apple Silicon, where every model has FEAT_FP16 (reported
    under the Linux names 'fphp' and 'asimdhp')."""
    machine = platform.machine().lower()
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    flags = flags_from_cpuinfo(text)
    if not text and platform.system() == "Darwin" and machine == "arm64":
        flags.update(("fphp", "asimdhp"))
    return machine, flags


def _arch(machine: str) -> str:
    if machine in ("x86_64", "amd64", "i386", "i686", "x86"):
        return "x86"
    if machine.startswith(("aarch64", "arm")):
        return "arm"
    if machine.startswith("riscv"):
        return "riscv"
    return machine or "unknown"


def native_fp16_flag(machine: str, flags: set[str]) -> str | None:
    """The flag that says this CPU has native fp16 arithmetic, or None."""
    names = {"x86": X86_FP16_FLAGS, "arm": ARM_FP16_FLAGS, "riscv": RISCV_FP16_FLAGS}.get(_arch(machine), ())
    return next((n for n in names if n in flags), None)


def reduced_precision_metadata(path) -> str | None:
    """The file's `reduced_precision_support` metadata value (e.g. 'fp16accfp16'), or None when absent/unreadable."""
    try:
        from ai_edge_litert import schema_py_generated as s

        buf = Path(path).read_bytes()
        model = s.Model.GetRootAs(buf, 0)
        for i in range(model.MetadataLength()):
            md = model.Metadata(i)
            if (md.Name() or b"").decode("utf-8", "replace") != REDUCED_PRECISION_KEY:
                continue
            b = model.Buffers(md.Buffer())
            if b.DataLength() > 0:
                return bytes(b.DataAsNumpy()).decode("utf-8", "replace")
            if b.Offset() > 1:
                return buf[b.Offset() : b.Offset() + b.Size()].decode("utf-8", "replace")
            return ""
    except Exception:  # a note must never fail the quantization
        return None
    return None


def allows_fp16_accumulation(metadata: str | None) -> bool:
    """What XNNPACK requires of the metadata: fp16 among the inference types and fp16 accumulation
    (SupportsFP16Inference && SupportsFP16Accumulation; the value reads e.g. 'fp16accfp16' or 'fp16bf16accfp16')."""
    if not metadata or "acc" not in metadata:
        return False
    types, _, acc = metadata.rpartition("acc")
    return acc == "fp16" and "fp16" in [types[i : i + 4] for i in range(0, len(types), 4)]


def fp16_compute_note(path) -> str:
    """One sentence for the report of an fp16 TFLite file: how XNNPACK computes it on this CPU."""
    machine, flags = cpu_flags()
    arch, flag = _arch(machine), native_fp16_flag(machine, flags)
    fp32_tail = ("the accuracy change vs the float file comes from the weights rounded to fp16, and small "
                 "differences between CPUs from different fp32 kernels (near-tied predictions can flip)")
    if flag is None:
        return (f"fp16 compute: no native fp16 arithmetic on this CPU ({machine}): XNNPACK dequantizes the fp16 "
                f"weights to fp32 and computes in fp32; {fp32_tail}")
    if arch not in ("arm", "riscv"):
        return (f"fp16 compute: this CPU ({machine}) has native fp16 arithmetic ({flag}), but XNNPACK computes in "
                f"fp16 on its own only on ARM and RISC-V CPUs: the fp16 weights are dequantized to fp32 and computed "
                f"in fp32; {fp32_tail}")
    if allows_fp16_accumulation(reduced_precision_metadata(path)):
        return (f"fp16 compute: this CPU ({machine}) has native fp16 arithmetic ({flag}) and the file's "
                f"{REDUCED_PRECISION_KEY} metadata allows fp16 accumulation: XNNPACK may compute in fp16; the "
                f"file is measured as it runs here, and a CPU without fp16 arithmetic computes it in fp32")
    return (f"fp16 compute: this CPU ({machine}) has native fp16 arithmetic ({flag}), but the file has no "
            f"{REDUCED_PRECISION_KEY} metadata allowing fp16 accumulation, so XNNPACK dequantizes the fp16 weights "
            f"to fp32 and computes in fp32; {fp32_tail}")
