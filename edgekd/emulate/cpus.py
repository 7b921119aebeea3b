"""The ARM cores qemu 7.2 models, and the /proc/cpuinfo each would show.

XNNPACK (through the cpuinfo library) reads the ISA from the auxiliary vector, which qemu fills from
`-cpu`, but it also parses /proc/cpuinfo for the core's part number to pick microkernels tuned for
in-order (A53) or out-of-order (A76) cores; on the host's x86 text it crashes. So each emulated run
sees an ARM cpuinfo that matches the `-cpu` it runs with.
"""

from __future__ import annotations

from edgekd.errors import EdgeKDError

_V8 = "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"
_V82 = _V8 + " atomics fphp asimdhp asimdrdm lrcpc dcpop asimddp"

# qemu -cpu name -> (implementer, variant, part, revision, Features line)
CPUS: dict[str, tuple[int, int, int, int, str]] = {
    "cortex-a35": (0x41, 0x0, 0xD04, 2, _V8),
    "cortex-a53": (0x41, 0x0, 0xD03, 4, _V8),
    "cortex-a57": (0x41, 0x1, 0xD07, 1, _V8),
    "cortex-a72": (0x41, 0x0, 0xD08, 3, _V8),
    "cortex-a76": (0x41, 0x4, 0xD0B, 1, _V82),
    "neoverse-n1": (0x41, 0x3, 0xD0C, 1, _V82),
}


def check_cpu(cpu: str) -> str:
    if cpu not in CPUS:
        # "max" is left out on purpose: it has SME, and XNNPACK then runs kernels no phone has
        raise EdgeKDError(f"qemu_cpu {cpu!r} is not supported for emulation; choose one of {', '.join(CPUS)}")
    return cpu


def cpuinfo_text(cpu: str, ncpu: int) -> str:
    impl, variant, part, rev, features = CPUS[check_cpu(cpu)]
    block = (
        "BogoMIPS\t: 50.00\n"
        f"Features\t: {features}\n"
        f"CPU implementer\t: 0x{impl:02x}\n"
        "CPU architecture: 8\n"
        f"CPU variant\t: 0x{variant:x}\n"
        f"CPU part\t: 0x{part:03x}\n"
        f"CPU revision\t: {rev}\n"
    )
    return "".join(f"processor\t: {i}\n{block}\n" for i in range(max(1, ncpu)))
