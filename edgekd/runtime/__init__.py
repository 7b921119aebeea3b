"""Running and timing models: one layer every stage uses (below the stages, above edgekd.core).

    sessions  ONNX Runtime / LiteRT sessions with edgekd's thread rules and one-line load errors
    runners   load_runner(model): float32 NCHW in, float32 out, for a .onnx, a .tflite or an nn.Module
    layout    NCHW -> NHWC and int8 input/output (de)quantisation with the file's own parameters
    timing    the one timing loop (time_calls) and the ABBA A/B measurement built on it
    latency   Latency: the documented latency dict (to_dict)
    machine   this host's description for `where`, CPU pinning
"""

from edgekd.core.inputs import tflite_interpreter_class
from edgekd.runtime.latency import Latency
from edgekd.runtime.runners import OnnxRunner, Runner, TFLiteRunner, TorchRunner, accuracy, load_runner
from edgekd.runtime.sessions import litert_interpreter, ort_session
from edgekd.runtime.timing import TimingSettings, measure_ab, measure_one, time_calls

__all__ = ["Latency", "OnnxRunner", "Runner", "TFLiteRunner", "TimingSettings", "TorchRunner", "accuracy",
           "litert_interpreter", "load_runner", "measure_ab", "measure_one", "ort_session", "time_calls",
           "tflite_interpreter_class"]
