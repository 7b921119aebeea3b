"""The built-in target backends; importing this package registers them (edgekd/backends.py loads it).

One module per backend. Import order is registration order: it orders the connection kinds and NPU
runtimes that target-file error messages list.
"""

# isort: off
from edgekd.profile.backends import host, ssh, adb, qnn_htp, vela, emulation, executorch, coreml
# isort: on

__all__ = ["adb", "coreml", "emulation", "executorch", "host", "qnn_htp", "ssh", "vela"]
