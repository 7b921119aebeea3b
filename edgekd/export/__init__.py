"""Export with parity: PyTorch -> ONNX (torch.onnx dynamo / TorchScript) and -> TFLite (litert-torch / onnx2tf).

Each export is checked on the user's real sample batch (max abs error, cosine, top-1 agreement); a file
outside tolerance is refused and the first diverging layer is named.
"""

from edgekd.export.onnx_export import export_onnx
from edgekd.export.report import ExportReport
from edgekd.export.tflite_export import export_tflite

__all__ = ["ExportReport", "export_onnx", "export_tflite"]
