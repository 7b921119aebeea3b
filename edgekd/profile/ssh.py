"""ARM boards over SSH: copy the model + edgekd's stand-alone profiler, run it there, read its JSON back.

ssh/scp get argument lists. The remote command is one shell line on the board (that is how ssh
works), so every remote argument is shlex-quoted; copied files get fixed, safe names.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import uuid
from pathlib import Path
from typing import Any

from edgekd.errors import EdgeKDError
from edgekd.profile.host import RUNNER, parse_runner_output, runner_args
from edgekd.targets import Connection

_SAFE_DIR = re.compile(r"^/[A-Za-z0-9_./-]*$")


class HostUnreachable(EdgeKDError):
    """ssh could not connect: the caller may fall back to a labelled host measurement."""


class SSH:
    def __init__(self, conn: Connection, connect_timeout: int = 10, timeout: float = 600):
        for field, val in (("host", conn.host), ("user", conn.user)):
            if val.startswith("-") or any(c.isspace() for c in val):
                raise EdgeKDError(f"ssh {field} {val!r} is not valid")
        if not _SAFE_DIR.match(conn.remote_dir or ""):
            raise EdgeKDError(f"ssh remote_dir {conn.remote_dir!r} must be an absolute path of letters, digits, _ . / -")
        self.conn, self.timeout = conn, timeout
        self.dest = f"{conn.user}@{conn.host}" if conn.user else conn.host
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}"]
        if conn.key:
            opts += ["-i", str(Path(conn.key).expanduser()), "-o", "IdentitiesOnly=yes"]
        if conn.known_hosts:
            opts += ["-o", f"UserKnownHostsFile={Path(conn.known_hosts).expanduser()}", "-o", "StrictHostKeyChecking=yes"]
        self.opts = opts

    def ssh_argv(self, remote: list[str]) -> list[str]:
        return ["ssh", "-p", str(self.conn.port), *self.opts, "--", self.dest, shlex.join(remote)]

    def scp_argv(self, local: list[str], remote_dir: str, legacy: bool = False) -> list[str]:
        return ["scp", "-q", *(["-O"] if legacy else []), "-P", str(self.conn.port), *self.opts, "--", *local,
                f"{self.dest}:{remote_dir}/"]

    def _run(self, argv: list[str], what: str, check: bool = True) -> subprocess.CompletedProcess:
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout)
        except FileNotFoundError:
            raise HostUnreachable(f"{argv[0]} is not installed (Debian: openssh-client)") from None
        except subprocess.TimeoutExpired:
            raise EdgeKDError(f"{what} on {self.dest} timed out after {self.timeout:g} s") from None
        if check and p.returncode == 255:  # ssh's own failure: connection, auth, host key
            msg = (p.stderr.strip().splitlines() or ["connection failed"])[-1][:300]
            raise HostUnreachable(f"cannot reach {self.dest} port {self.conn.port} over ssh: {msg}")
        if check and p.returncode != 0:
            msg = (p.stderr.strip().splitlines() or [f"exit code {p.returncode}"])[-1][:300]
            raise EdgeKDError(f"{what} on {self.dest} failed: {msg}")
        return p

    def run(self, remote: list[str], what: str, check: bool = True) -> subprocess.CompletedProcess:
        return self._run(self.ssh_argv(remote), what, check)

    def copy(self, local: list[str], remote_dir: str) -> None:
        try:
            self._run(self.scp_argv(local, remote_dir), "copy")
        except EdgeKDError as exc:
            # boards without an SFTP server (dropbear, minimal sshd): the legacy scp protocol still works;
            # remote_dir was checked to hold only safe characters, so its remote-shell expansion is harmless
            if "connection closed" not in str(exc).lower() and "subsystem" not in str(exc).lower():
                raise
            self._run(self.scp_argv(local, remote_dir, legacy=True), "copy")


def profile_ssh(model: Path, conn: Connection, *, runs: int, warmup: int, threads: int, max_seconds: float,
                inputs: Path | None = None, xnnpack: bool = True, op_profile: int = 0,
                shape: tuple[int, ...] | None = None) -> dict[str, Any]:
    """The runner's JSON from the board, plus 'where' (user@host, machine, CPU)."""
    ssh = SSH(conn, timeout=max_seconds * 2 + 300)
    workdir = f"{conn.remote_dir.rstrip('/')}/edgekd-{uuid.uuid4().hex[:8]}"
    ssh.run(["mkdir", "-p", workdir], "mkdir")
    try:
        # copied under fixed names so nothing user-named reaches the remote shell unquoted
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory(prefix="edgekd-ssh-") as tmp:
            files = [Path(tmp) / f"model{model.suffix}", Path(tmp) / "edgekd_runner.py"]
            shutil.copyfile(model, files[0])
            shutil.copyfile(RUNNER, files[1])
            if inputs is not None:
                files.append(Path(tmp) / "inputs.npz")
                shutil.copyfile(inputs, files[2])
            ssh.copy([str(f) for f in files], workdir)
        remote_inputs = f"{workdir}/inputs.npz" if inputs is not None else None
        argv = [conn.python, f"{workdir}/edgekd_runner.py",
                *runner_args(f"{workdir}/model{model.suffix}", runs, warmup, threads, max_seconds, remote_inputs, xnnpack,
                            op_profile, shape)]
        p = ssh.run(argv, "profiling", check=False)
        if p.returncode == 255:
            raise HostUnreachable(f"lost the ssh connection to {ssh.dest} while profiling")
        data = parse_runner_output(p.stdout, p.stderr, p.returncode, f"{ssh.dest} (ssh)")
    finally:
        try:
            ssh.run(["rm", "-rf", workdir], "cleanup", check=False)
        except EdgeKDError:
            pass
    rt = f"{data['runtime']} {data['runtime_version']}" + (" + " + "/".join(data["delegates"]) if data.get("delegates") else "")
    data["where"] = (f"{ssh.dest}:{conn.port} over ssh, {data['machine']} ({data['cpu']}, {data['cpu_count']} cores), "
                     f"{rt}, {data['threads']} thread{'s' if data['threads'] != 1 else ''}")
    data["command"] = argv
    return data
