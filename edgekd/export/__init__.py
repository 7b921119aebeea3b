"""Export with parity: PyTorch -> ONNX (torch.onnx dynamo / TorchScript), -> TFLite (litert-torch / onnx2tf),
-> ExecuTorch .pte (XNNPACK) and -> Core ML .mlpackage (coremltools; structural check only).

Each export is checked on the user's real sample batch (max abs error, cosine, top-1 agreement); a file
outside tolerance is refused and the first diverging layer is named. Converters are registered per format
(edgekd/export/converters/, one file each) and tried in order by one loop (edgekd/export/fallback.py).
"""

from edgekd.export.coreml_export import export_coreml
from edgekd.export.onnx_export import export_onnx
from edgekd.export.pte_export import export_pte
from edgekd.export.report import ExportReport
from edgekd.export.tflite_export import export_tflite

__all__ = ["ExportReport", "export_coreml", "export_onnx", "export_pte", "export_tflite"]
