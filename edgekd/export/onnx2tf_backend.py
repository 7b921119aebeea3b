"""onnx2tf (ONNX -> TensorFlow -> TFLite) run offline and quietly.

onnx2tf fetches sample images from the internet when an input looks like an RGB image, and calls
sys.exit on errors; both are contained here. Needs the `tf` extra (tensorflow-cpu, onnx2tf).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np

from edgekd.errors import EdgeKDError


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnx2tf") is not None and importlib.util.find_spec("tensorflow") is not None


@contextlib.contextmanager
def _offline_images(images_nhwc: np.ndarray | None):
    """Make onnx2tf use the user's images instead of downloading MS-COCO samples."""
    import onnx2tf.onnx2tf as o2t

    def local_images() -> np.ndarray:
        if images_nhwc is None:
            raise RuntimeError("onnx2tf asked for sample images and none were given (no downloads allowed)")
        return images_nhwc.astype(np.float32)

    saved = o2t.download_test_image_data
    o2t.download_test_image_data = local_images
    try:
        yield
    finally:
        o2t.download_test_image_data = saved


def convert(onnx_path: Path, *, nhwc: bool = True, images_nhwc: np.ndarray | None = None,
            calib: dict[str, np.ndarray] | None = None, want: str = "float32") -> tuple[bytes, dict[str, bytes]]:
    """Run onnx2tf; returns (bytes of the `want` file, every .tflite it wrote by suffix).

    want: float32 | float16 | dynamic_range_quant | integer_quant (float I/O) | full_integer_quant (int8 I/O).
    calib: {onnx input name: calibration array in the file's layout}, needed for the integer files.
    """
    if not available():
        raise EdgeKDError("onnx2tf fallback needs the tf extra: pip install 'edgekd[tf]'")
    import onnx
    import onnx2tf

    names = [i.name for i in onnx.load(str(onnx_path), load_external_data=False).graph.input]
    with tempfile.TemporaryDirectory(prefix="edgekd-onnx2tf-") as d:
        kwargs = dict(input_onnx_file_path=str(onnx_path), output_folder_path=d, non_verbose=True,
                      copy_onnx_input_output_names_to_tflite=True, output_signaturedefs=True)
        if not nhwc:
            kwargs["keep_ncw_or_nchw_or_ncdhw_input_names"] = names
        if want in ("integer_quant", "full_integer_quant"):
            if not calib:
                raise EdgeKDError("onnx2tf int8 conversion needs calibration data")
            paths = []
            for name, arr in calib.items():
                p = Path(d) / f"calib_{len(paths)}.npy"
                np.save(p, arr.astype(np.float32))
                # mean 0 / std 1: the data is already normalised the way the model expects
                paths.append([name, str(p), np.zeros(1, np.float32), np.ones(1, np.float32)])
            kwargs.update(output_integer_quantized_tflite=True, custom_input_op_name_np_data_path=paths)
        if want == "dynamic_range_quant":
            kwargs["output_dynamic_range_quantized_tflite"] = True
        sink = io.StringIO()
        try:
            with _offline_images(images_nhwc), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                onnx2tf.convert(**kwargs)
        except SystemExit:
            tail = [ln for ln in sink.getvalue().splitlines() if ln.strip()][-3:]
            raise RuntimeError("onnx2tf exited: " + " / ".join(tail)[-300:]) from None
        stem = Path(onnx_path).stem
        files = {p.stem[len(stem) + 1:]: p.read_bytes() for p in Path(d).glob(f"{stem}_*.tflite")}
        if want not in files:
            raise RuntimeError(f"onnx2tf wrote no {want} file (got {sorted(files) or 'none'})")
        if want == "float32" and not _has_signature(files[want]) and (Path(d) / "saved_model.pb").is_file():
            files[want] = _from_saved_model(d)
        return files[want], files


def _has_signature(data: bytes) -> bool:
    from edgekd.runtime import tflite_interpreter_class

    return bool(tflite_interpreter_class()(model_content=data).get_signature_list())


def _from_saved_model(folder: str) -> bytes:
    """onnx2tf 1.28 writes its float32 file from a concrete function, without a SignatureDef, which
    ai-edge-quantizer needs to calibrate; its saved_model (serving_default) converts to the same graph with one."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(folder)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        return conv.convert()
