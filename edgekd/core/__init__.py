"""Shared types every stage uses: artifacts, the run directory and its manifest, safe file writes."""

from edgekd.core.files import atomic_path, atomic_write_text, check_output_file, ensure_output_dir, sha256_file
from edgekd.core.manifest import Artifact, RunDir, StageResult

__all__ = [
    "Artifact",
    "RunDir",
    "StageResult",
    "atomic_path",
    "atomic_write_text",
    "check_output_file",
    "ensure_output_dir",
    "sha256_file",
]
