"""Hugging Face teachers: DistilBERT-style students, text data, optimum / int8 ONNX / TFLite output.

    from edgekd.hf import compress_hf
    report = compress_hf("hf:/path/to/model_dir", data="texts.txt", target="android", output="runs/hf")

Heavy libraries (torch, transformers, optimum, litert) are imported inside the functions.
"""

from edgekd.hf.compress import compress_hf
from edgekd.hf.student import derive_hf_student, layer_targets, parse_layers
from edgekd.hf.teacher import HFTeacher, load_hf_teacher, parse_hf_spec
from edgekd.hf.text_data import TextData, load_texts, read_texts
from edgekd.hf.train import TrainConfig, distill_hf

__all__ = ["HFTeacher", "TextData", "TrainConfig", "compress_hf", "derive_hf_student", "distill_hf", "layer_targets",
           "load_hf_teacher", "load_texts", "parse_hf_spec", "parse_layers", "read_texts"]
