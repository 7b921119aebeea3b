"""Profiling per target: host CPU (measured), ARM boards over SSH and Android over adb (measured on
the device), Qualcomm HTP (simulated, onnxruntime-qnn) and Arm Ethos-U (estimated, Vela).

Each is a registered backend (edgekd/profile/backends/, registry edgekd/backends.py) returning the same
latency dict (see report.make_result); `profile()` asks the registry which backend serves the target.
"""

from edgekd.profile.api import profile
from edgekd.profile.report import ProfileReport, make_result

__all__ = ["ProfileReport", "make_result", "profile"]
