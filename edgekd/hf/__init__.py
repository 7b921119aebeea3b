"""Hugging Face parts: teachers, DistilBERT-style students, text data, training, optimum / int8 ONNX / TFLite
output. The run itself is edgekd.pipeline.compress_hf (the text modality, edgekd.modalities.text):

    from edgekd.pipeline import compress_hf
    report = compress_hf("hf:/path/to/model_dir", data="texts.txt", target="android", output="runs/hf")

Heavy libraries (torch, transformers, optimum, litert) are imported inside the functions.
"""

from edgekd.hf.student import derive_hf_student, layer_targets, parse_layers
from edgekd.hf.teacher import HFTeacher, load_hf_teacher, parse_hf_spec
from edgekd.hf.text_data import TextData, load_texts, read_texts
from edgekd.hf.train import TrainConfig, distill_hf

__all__ = ["HFTeacher", "TextData", "TrainConfig", "derive_hf_student", "distill_hf", "layer_targets",
           "load_hf_teacher", "load_texts", "parse_hf_spec", "parse_layers", "read_texts"]
