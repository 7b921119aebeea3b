"""ARM without a board: run model files on the real aarch64 LiteRT / ONNX Runtime kernels under
qemu-user, check their numerics against the host and count executed guest instructions per inference.

    emulate_profile(model_path, target, sample=..., runs=..., warmup=...) -> list[dict]
    instruction_count(model_path, target, runs=...) -> dict
Setup once: `make arm-env` (python -m edgekd.emulate.setup).
"""

from edgekd.emulate.env import ArmEnv, arm_env_available, arm_home, find_arm_env
from edgekd.emulate.profile import emulate_profile, instruction_count

__all__ = ["ArmEnv", "arm_env_available", "arm_home", "emulate_profile", "find_arm_env", "instruction_count"]
