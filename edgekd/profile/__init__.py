"""Profiling per target: host CPU (measured), ARM boards over SSH and Android over adb (measured on
the device), Qualcomm HTP (simulated, onnxruntime-qnn) and Arm Ethos-U (estimated, Vela).

Every backend returns the same latency dict (see report.make_result); `profile()` picks the backend.
"""

from edgekd.profile.api import profile
from edgekd.profile.report import ProfileReport, make_result

__all__ = ["ProfileReport", "make_result", "profile"]
