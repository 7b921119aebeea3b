"""The one pipeline: every stage chained into one run directory, ending in report.md / report.json.

compress() for image classifiers and feature-vector models, compress_hf() for Hugging Face text models; both
run edgekd.pipeline.sequence with a modality adapter from edgekd.modalities.
"""

from edgekd.pipeline.compress import CompressConfig, compress, compress_hf

__all__ = ["CompressConfig", "compress", "compress_hf"]
