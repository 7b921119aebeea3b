"""coremltools, imported without TensorFlow. coremltools imports TensorFlow when it is installed (for its TF
frontend, which edgekd never uses); with tensorflow-cpu 2.21 loaded first, the triton that torch.export loads
afterwards segfaults the process. Hiding TensorFlow during the import avoids both that and ~10 s of import."""

from __future__ import annotations

import contextlib
import io
import sys

from edgekd.errors import EdgeKDError

MISSING = "coremltools is not installed (pip install 'edgekd[coreml]')"


def import_coremltools():
    hide = "tensorflow" not in sys.modules
    if hide:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]  # makes `import tensorflow` fail inside
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            import coremltools  # its "Failed to load libcoremlpython" lines: that library exists only on macOS
    except ImportError:
        raise EdgeKDError(MISSING) from None
    finally:
        if hide and sys.modules.get("tensorflow", 0) is None:
            del sys.modules["tensorflow"]  # a later onnx2tf conversion imports the real one
    return coremltools
