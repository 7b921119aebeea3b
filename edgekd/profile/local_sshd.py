"""A throwaway OpenSSH server on 127.0.0.1 (key auth only, unprivileged port, everything in one folder).

It stands in for a board when there is none: the SSH transport tests and the profiling benchmark run the
real ssh/scp path against it, so what they exercise is what a user's Raspberry Pi would see.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from edgekd.errors import EdgeKDError

SFTP_SERVERS = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/libexec/sftp-server")


@dataclass
class LocalSSHD:
    proc: subprocess.Popen
    port: int
    user: str
    dir: Path  # keys: dir/"user" (client), dir/"known_hosts"

    @property
    def key(self) -> Path:
        return self.dir / "user"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def sshd_missing() -> str | None:
    """Why a local sshd cannot run here, or None."""
    if not (shutil.which("sshd") or os.path.exists("/usr/sbin/sshd")) or not any(map(os.path.exists, SFTP_SERVERS)):
        return "OpenSSH server not installed (Debian: apt-get install openssh-server)"
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "OpenSSH client not installed (Debian: apt-get install openssh-client)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_local_sshd(workdir: str | os.PathLike, *, sftp: bool = True) -> LocalSSHD:
    """Start sshd in the foreground on a free port; raises EdgeKDError if it cannot."""
    if why := sshd_missing():
        raise EdgeKDError(why)
    d = Path(workdir)
    d.mkdir(parents=True, exist_ok=True)
    for name in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "user.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    port, user = _free_port(), getpass.getuser()
    # scp speaks SFTP since OpenSSH 9.0, so the server needs its sftp subsystem (as a stock sshd_config has)
    sftp_line = f"Subsystem sftp {next(p for p in SFTP_SERVERS if os.path.exists(p))}\n" if sftp else ""
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        f"PidFile {d / 'sshd.pid'}\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
        f"KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
        f"AllowUsers {user}\nLogLevel ERROR\n{sftp_line}")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    with open(d / "sshd.log", "w") as log:
        proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(d / "sshd_config")], stderr=log)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                raise EdgeKDError(f"sshd did not start: {(d / 'sshd.log').read_text().strip()[:200]}") from None
            time.sleep(0.05)
    host_pub = (d / "host.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    return LocalSSHD(proc, port, user, d)
