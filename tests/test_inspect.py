import pytest

from edgekd.errors import EdgeKDError
from edgekd.inspect import count_ops, custom_ops, flex_ops, model_info

try:  # helpers live beside the tests; works with or without tests/__init__.py
    from test_gate_models import onnx_convnet, onnx_matmul_chain, tflite_with_custom_ops
except ImportError:
    from tests.test_gate_models import onnx_convnet, onnx_matmul_chain, tflite_with_custom_ops


def test_onnx_counts_custom_ops_and_macs(tmp_path):
    p = onnx_convnet(tmp_path / "m.onnx", channels=8, size=16, extra=True)
    ops = count_ops(p)
    assert ops == {"Conv": 1, "Relu": 1, "Transpose": 1, "com.example:MyOp": 1}
    info = model_info(p)
    assert info["format"] == "onnx"
    assert info["transpose_ops"] == 1
    assert info["custom_ops"] == {"com.example:MyOp": 1}
    assert info["macs"] == 8 * 9 * 16 * 16  # dynamic batch counted as one sample
    assert info["params"] == 8 * 9
    assert info["inputs"] == [{"name": "x", "shape": ["N", 1, 16, 16], "dtype": "float32"}]
    assert info["size_bytes"] == p.stat().st_size


def test_onnx_matmul_macs(tmp_path):
    info = model_info(onnx_matmul_chain(tmp_path / "c.onnx", dim=32, layers=3))
    assert info["macs"] == 3 * 32 * 32
    assert info["ops"] == {"MatMul": 3, "Relu": 3}
    assert info["custom_ops"] == {}


def test_tflite_flex_custom_quant_io_and_macs(tmp_path):
    p = tflite_with_custom_ops(tmp_path / "m.tflite")
    ops = count_ops(p)
    assert ops == {"CONV_2D": 1, "FlexAddV2": 1, "TRANSPOSE": 1, "custom:MyOp": 1}
    info = model_info(p)
    assert info["flex_ops"] == {"FlexAddV2": 1}
    assert info["custom_ops"] == {"FlexAddV2": 1, "custom:MyOp": 1}
    assert info["transpose_ops"] == 1
    assert info["macs"] == 16 * 16 * 8 * 9
    assert info["params"] == 72 and info["weight_dtypes"] == {"float32": 72}
    assert info["outputs"][0]["dtype"] == "int8"
    assert info["outputs"][0]["quant"] == {"scale": 0.5, "zero_point": -3}
    assert flex_ops(ops) == {"FlexAddV2": 1} and "CONV_2D" not in custom_ops(ops)


@pytest.mark.parametrize("name,content,msg", [
    ("m.onnx", b"not a protobuf at all \xff\xfe", "not a readable ONNX"),
    ("m.tflite", b"garbage bytes here", "not a TFLite"),
    ("m.pt", b"x", "expected a .onnx, .tflite, .pte or .mlpackage"),
])
def test_bad_files_raise_one_line(tmp_path, name, content, msg):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(EdgeKDError, match=msg) as e:
        model_info(p)
    assert "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(EdgeKDError, match="does not exist"):
        count_ops(tmp_path / "nope.onnx")


def test_external_data_counts_toward_size(tmp_path):
    import onnx

    p = onnx_matmul_chain(tmp_path / "e.onnx", dim=64, layers=2)
    m = onnx.load(str(p))
    ext = tmp_path / "ext.onnx"
    onnx.save(m, str(ext), save_as_external_data=True, location="ext.onnx.data", size_threshold=0)
    info = model_info(ext)
    assert info["size_bytes"] == ext.stat().st_size + (tmp_path / "ext.onnx.data").stat().st_size
    assert info["params"] == 2 * 64 * 64 and info["macs"] == 2 * 64 * 64


FIX = __import__("pathlib").Path(__file__).parent / "fixtures" / "profile"


@pytest.mark.skipif(not (FIX / "tiny_int8.tflite").is_file(), reason="profile fixtures missing")
def test_real_converted_files_agree_on_macs():
    """tiny CNN (conv 1->8, conv 8->16 s2, linear 16->10 on 8x8) exported by torch.onnx, litert-torch, ai-edge-quantizer."""
    expected = 8 * 64 * 9 + 16 * 16 * 8 * 9 + 16 * 10
    for name in ("tiny_fp32.onnx", "tiny_fp32.tflite", "tiny_int8.tflite"):
        assert model_info(FIX / name)["macs"] == expected, name
    q = model_info(FIX / "tiny_int8.tflite")
    assert q["inputs"][0]["dtype"] == "int8" and "quant" in q["inputs"][0]
    assert q["weight_dtypes"].get("int8", 0) > 0
