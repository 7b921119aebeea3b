"""`edgekd compress`: every stage chained into one run directory, ending in report.md / report.json."""

from edgekd.pipeline.compress import CompressConfig, compress

__all__ = ["CompressConfig", "compress"]
