"""Quantization: ONNX static int8 QDQ / dynamic, TFLite full-int8 / int16x8 / dynamic-range / float16,
calibrated on real data, with an accuracy budget that keeps the most sensitive layers in float."""

from edgekd.quantize.api import quantize
from edgekd.quantize.report import QuantReport

__all__ = ["QuantReport", "quantize"]
