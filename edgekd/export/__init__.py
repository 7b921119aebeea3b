"""Export with parity: PyTorch -> ONNX (torch.onnx dynamo / TorchScript) and -> TFLite (litert-torch / onnx2tf).

Each export is checked on the user's real sample batch (max abs error, cosine, top-1 agreement); a file
outside tolerance is refused and the first diverging layer is named. Converters are registered per format
(edgekd/export/converters/, one file each) and tried in order by one loop (edgekd/export/fallback.py).
"""

from edgekd.export.onnx_export import export_onnx
from edgekd.export.report import ExportReport
from edgekd.export.tflite_export import export_tflite

__all__ = ["ExportReport", "export_onnx", "export_tflite"]
