"""Run and administer a local Eclipse Mosquitto broker for the uplink (docs/uplink.md).

The broker is a real ``mosquitto`` (Debian package, installed by ``tools/sysdeps.sh``).
:class:`Mosquitto` writes its configuration into a directory: one TLS listener on a
loopback port, no anonymous access, a password file and the ACL of
:func:`kagiya.server.uplink.topics.acl_text`. :class:`BrokerAccounts` creates and deletes
per-lock accounts in the password file with ``mosquitto_passwd`` and makes the running
broker reload it (SIGHUP), which also closes nothing: a deleted account can no longer
connect, and Mosquitto 2 disconnects clients whose account is gone on reload.

:func:`make_tls` generates a throwaway CA and a server certificate for ``localhost`` /
127.0.0.1 (tests, the bench and the demo); production brokers use the operator's PKI.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kagiya.server.uplink.topics import acl_text

SERVER_USER = "kagiya-server"


class BrokerUnavailable(RuntimeError):
    """mosquitto is not installed or did not start."""


def mosquitto_binary() -> str:
    """Path of the ``mosquitto`` broker (Debian installs it in /usr/sbin)."""
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if not found:
        raise BrokerUnavailable("mosquitto is not installed (run `make sysdeps`)")
    return found


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a throwaway broker PKI; ``ca_der`` is what a lock is provisioned with."""

    ca_pem: Path
    cert_pem: Path
    key_pem: Path
    ca_der: bytes


def make_tls(directory: Path, hostname: str = "localhost") -> TlsFiles:
    """A new CA and a server certificate for ``hostname`` and 127.0.0.1 (P-256, 1 day)."""
    import ipaddress

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kagiya test broker CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key",
                     ca.public_bytes(serialization.Encoding.DER))
    files.ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_pem.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    os.chmod(files.key_pem, 0o600)
    return files


class BrokerAccounts:
    """Per-lock broker accounts in a Mosquitto password file (``mosquitto_passwd``)."""

    def __init__(self, password_file: Path, pid_file: Path | None = None) -> None:
        self.password_file = password_file
        self.pid_file = pid_file

    def _change(self, username: str, password: str | None) -> None:
        """Set (``password``) or delete (None) ``username``: under an exclusive lock on a
        lock file next to the password file (every thread and process of every key server
        on this host), ``mosquitto_passwd`` edits a copy that then replaces the file in
        one rename. Edited in place, concurrent changes lost each other's accounts (even
        the server's own), and a broker reloading in the middle of a rewrite read half a
        file and dropped the sessions of accounts it did not find."""
        tool = shutil.which("mosquitto_passwd")
        if not tool:
            raise BrokerUnavailable("mosquitto_passwd is not installed (run `make sysdeps`)")
        pf = self.password_file
        with open(pf.with_name(pf.name + ".lock"), "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            text = pf.read_text() if pf.exists() else ""
            if password is None and not any(line.split(":", 1)[0] == username
                                            for line in text.splitlines()):
                return
            tmp = pf.with_name(f".{pf.name}.{os.getpid()}.{threading.get_ident()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            try:
                args = ["-b", str(tmp), username, password] if password is not None \
                    else ["-D", str(tmp), username]
                subprocess.run([tool, *args], check=True, capture_output=True, timeout=30)
                os.replace(tmp, pf)
            finally:
                tmp.unlink(missing_ok=True)

    def create(self, username: str) -> str:
        """Create (or replace) ``username`` with a new random password; returns it."""
        password = secrets.token_urlsafe(24)
        self._change(username, password)
        self.reload()
        return password

    def delete(self, username: str) -> None:
        """Delete ``username`` (no error when it does not exist) and reload the broker."""
        self._change(username, None)
        self.reload()

    def reload(self) -> None:
        """SIGHUP the running broker so it re-reads the password and ACL files."""
        if self.pid_file is None or not self.pid_file.exists():
            return
        try:
            os.kill(int(self.pid_file.read_text().strip()), signal.SIGHUP)
        except (ValueError, ProcessLookupError):
            pass


class Mosquitto:
    """A mosquitto process on 127.0.0.1:``port`` with TLS, passwords and the lock ACL."""

    def __init__(self, directory: Path, port: int, *, hostname: str = "localhost") -> None:
        self.directory = directory
        self.port = port
        self.hostname = hostname
        directory.mkdir(parents=True, exist_ok=True)
        self.tls = make_tls(directory / "tls", hostname)
        self.password_file = directory / "passwd"
        self.acl_file = directory / "acl"
        self.pid_file = directory / "mosquitto.pid"
        self.accounts = BrokerAccounts(self.password_file, self.pid_file)
        self.server_password = self.accounts.create(SERVER_USER)
        self.acl_file.write_text(acl_text(SERVER_USER))
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            ""
            # as root, mosquitto would drop to the "mosquitto" user, who cannot read a
            # private temporary directory: stay the user who started it
            + ("user root\n" if os.geteuid() == 0 else "")
            + "per_listener_settings false\n"
            "allow_anonymous false\n"
            f"password_file {self.password_file}\n"
            f"acl_file {self.acl_file}\n"
            "persistence false\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            f"listener {port} 127.0.0.1\n"
            f"cafile {self.tls.ca_pem}\n"
            f"certfile {self.tls.cert_pem}\n"
            f"keyfile {self.tls.key_pem}\n"
            "tls_version tlsv1.2\n")
        self.log_path = directory / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> Mosquitto:
        """Start the broker and wait until it accepts TCP connections."""
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.config)],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        self.pid_file.write_text(str(self.proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerUnavailable(f"mosquitto exited: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerUnavailable("mosquitto did not start listening")

    def stop(self) -> None:
        """Terminate the broker (SIGTERM, then SIGKILL)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.pid_file.unlink(missing_ok=True)

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
