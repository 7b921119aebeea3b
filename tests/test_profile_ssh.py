"""ARM boards over SSH, tested against a real OpenSSH server started on 127.0.0.1 (key auth, keys and
config in a temp dir, an unprivileged port). Skipped with a reason when sshd is not installed."""

import shutil
import socket
import sys
from pathlib import Path

import pytest

from edgekd.errors import EdgeKDError
from edgekd.profile import profile
from edgekd.profile.local_sshd import sshd_missing, start_local_sshd
from edgekd.profile.ssh import SSH
from edgekd.targets import Connection

FIX = Path(__file__).parent / "fixtures" / "profile"
pytestmark = pytest.mark.skipif(sshd_missing() is not None, reason=str(sshd_missing()))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sshd(tmp_path_factory, sftp: bool = True):
    try:
        server = start_local_sshd(tmp_path_factory.mktemp("sshd"), sftp=sftp)
    except EdgeKDError as exc:
        pytest.skip(str(exc))
    return server.proc, {"dir": server.dir, "port": server.port, "user": server.user}


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    proc, info = start_sshd(tmp_path_factory)
    yield info
    proc.terminate()
    proc.wait(timeout=10)


def board_toml(tmp_path: Path, sshd: dict, port: int | None = None, remote_dir: str = "/tmp/edgekd-test") -> Path:
    d = sshd["dir"]
    p = tmp_path / "pi.toml"
    p.write_text(f"""name = "local-pi"
description = "the test sshd standing in for a Raspberry Pi"
arch = "aarch64"
[[ships]]
format = "tflite"
precision = "int8"
[runtime]
name = "litert"
delegates = ["xnnpack"]
threads = 1
[connection]
kind = "ssh"
host = "127.0.0.1"
user = "{sshd['user']}"
port = {port or sshd['port']}
key = "{d / 'user'}"
known_hosts = "{d / 'known_hosts'}"
python = "{sys.executable}"
remote_dir = "{remote_dir}"
[benchmark]
runs = 12
warmup = 2
max_seconds = 10
""")
    return p


def test_profiles_on_the_board_over_real_ssh(sshd, tmp_path):
    # a model name with shell metacharacters travels safely: it is copied under a fixed name
    odd = tmp_path / "my model; touch pwned.tflite"
    shutil.copy(FIX / "tiny_int8.tflite", odd)
    rep = profile(odd, board_toml(tmp_path, sshd), sample=FIX / "digits_sample.npy")
    r = rep.primary
    assert r["backend"] == "ssh", rep.notes
    assert r["kind"] == "measured" and r["runs"] == 12 and r["warmup"] == 2
    assert r["where"].startswith(f"{sshd['user']}@127.0.0.1:{sshd['port']} over ssh")
    assert r["runtime"] == "ai-edge-litert" and r["input_source"] == "sample" and r["p50_ms"] > 0
    assert r["file_size_bytes"] == odd.stat().st_size
    assert not Path("pwned.tflite").exists() and not (tmp_path / "pwned.tflite").exists()
    assert not list(Path("/tmp/edgekd-test").glob("edgekd-*"))  # remote work dir removed


def test_onnx_over_ssh(sshd, tmp_path):
    r = profile(FIX / "tiny_fp32.onnx", board_toml(tmp_path, sshd), runs=5).primary
    assert r["backend"] == "ssh" and r["runtime"] == "onnxruntime" and r["runs"] == 5


@pytest.mark.slow  # starts a second sshd
def test_board_without_sftp_server_gets_legacy_scp(tmp_path_factory, tmp_path):
    proc, info = start_sshd(tmp_path_factory, sftp=False)  # like dropbear or a minimal sshd_config
    try:
        r = profile(FIX / "tiny_int8.tflite", board_toml(tmp_path, info), runs=3, warmup=1).primary
        assert r["backend"] == "ssh"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_unreachable_board_falls_back_labelled_or_fails_when_required(sshd, tmp_path):
    target = board_toml(tmp_path, sshd, port=free_port())  # nothing listens there
    r = profile(FIX / "tiny_int8.tflite", target, runs=3, warmup=1).primary
    assert r["backend"] == "host-fallback" and "no local-pi device reachable" in r["where"]
    with pytest.raises(EdgeKDError, match="cannot reach"):
        profile(FIX / "tiny_int8.tflite", target, runs=3, require_device=True)


def test_remote_errors_come_back_as_one_line(sshd, tmp_path, monkeypatch):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x00garbage" * 20)
    # profile() checks files locally first; skip that here so the board's own error path is what is tested
    monkeypatch.setattr("edgekd.core.inputs.check_model_file", lambda p, what="model file": Path(p))
    with pytest.raises(EdgeKDError) as ei:
        profile(bad, board_toml(tmp_path, sshd), runs=2)
    assert "cannot load" in str(ei.value) and "\n" not in str(ei.value)


def test_argument_lists_quote_the_remote_line():
    ssh = SSH(Connection(kind="ssh", host="pi.local", user="pi", port=2200, key="~/k", remote_dir="/tmp/x"))
    argv = ssh.ssh_argv(["python3", "/tmp/x/r.py", "a b; rm -rf ~"])
    assert argv[:3] == ["ssh", "-p", "2200"] and "pi@pi.local" in argv
    assert argv[-1] == "python3 /tmp/x/r.py 'a b; rm -rf ~'"
    assert ssh.scp_argv(["/l/m.tflite"], "/tmp/x")[-1] == "pi@pi.local:/tmp/x/"
    for bad in (dict(host="-oProxyCommand=x"), dict(remote_dir="/tmp/x; rm"), dict(remote_dir="relative")):
        kw = dict(kind="ssh", host="pi.local", user="pi", remote_dir="/tmp/x") | bad
        with pytest.raises(EdgeKDError):
            SSH(Connection(**kw))
