"""Real TLS traffic for tests: certificates, free ports, tcpdump on loopback, and
peers that write their own key logs (see tests/tls_peers.py)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable


def make_cert(folder: Path, *, rsa_key: bool = False) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost: (cert.pem, key.pem);
    ECDSA P-256, or RSA 2048 (for the TLS 1.2 RSA key exchange)."""
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        rsa.generate_private_key(65537, 2048) if rsa_key
        else ec.generate_private_key(ec.SECP256R1()))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Tcpdump:
    """tcpdump on ``lo`` for the duration of a ``with`` block.

    Start: waits for its "listening on" line.  Stop: sends a UDP marker datagram
    (also matched by the filter) and waits until it is in the file — packets on
    loopback are captured in order, so everything before it is written — then
    SIGINT."""

    def __init__(self, path: Path, bpf: str) -> None:
        self.path = path
        self.marker_port = free_port()
        self.marker = uuid.uuid4().hex.encode()
        self.bpf = f"({bpf}) or (udp port {self.marker_port})"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Tcpdump:
        self.proc = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-U", "-n", "-s", "262144", "-w", str(self.path), self.bpf],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        assert self.proc.stderr is not None
        seen = []
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace")
            seen.append(line)
            if "listening on" in line:
                return self
        raise RuntimeError(f"tcpdump did not start: {''.join(seen)}")

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + 30
        sent = 0.0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            while time.monotonic() < deadline:
                if time.monotonic() - sent > 2:
                    s.sendto(self.marker, ("127.0.0.1", self.marker_port))
                    sent = time.monotonic()
                if self.path.exists() and self.marker in self.path.read_bytes():
                    break
                time.sleep(0.02)  # polling the file for the marker, not waiting blindly
        self.proc.send_signal(signal.SIGINT)
        self.proc.communicate(timeout=30)


@dataclass
class TlsRun:
    pcap: Path
    keylog: Path
    truth: list[dict[str, str]]
    port: int


def run_python_peers(folder: Path, *, tls: str = "1.3", ciphers: str | None = None,
                     ciphersuites: str | None = None, openssl_options: str | None = None,
                     alpn: str | None = None, rsa_key: bool = False,
                     name: str = "wss") -> TlsRun:
    """python-websockets over TLS on loopback, captured; returns pcap, key log, truth."""
    cert, key = make_cert(folder, rsa_key=rsa_key)
    port = free_port()
    pcap, keylog, truth = (folder / f"{name}.pcap", folder / f"{name}.keys.txt",
                           folder / f"{name}.truth.jsonl")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if ciphersuites or openssl_options:
        # TLS 1.3 suites and options like EncryptThenMac are only configurable this way.
        conf = folder / f"{name}.openssl.cnf"
        conf.write_text("openssl_conf = conf\n[conf]\nssl_conf = ssl\n[ssl]\n"
                        "system_default = sys\n[sys]\n"
                        + (f"Ciphersuites = {ciphersuites}\n" if ciphersuites else "")
                        + (f"Options = {openssl_options}\n" if openssl_options else ""))
        env["OPENSSL_CONF"] = str(conf)
    cmd = [PYTHON, str(HERE / "tls_peers.py"), str(port), str(cert), str(key), str(keylog),
           str(truth), "--tls", tls]
    if ciphers:
        cmd += ["--ciphers", ciphers]
    if alpn:
        cmd += ["--alpn", alpn]
    with Tcpdump(pcap, f"tcp port {port}"):
        subprocess.run(cmd, env=env, check=True, timeout=120)
    rows = [json.loads(line) for line in truth.read_text().splitlines()]
    return TlsRun(pcap, keylog, rows, port)


NODE_DIR = ROOT / "tools" / "samples_node"


def node_ws_installed() -> Path:
    """tools/samples_node with its pinned ``ws`` installed (``npm ci`` if missing)."""
    if not (NODE_DIR / "node_modules" / "ws").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True,
                       capture_output=True, timeout=300)
    return NODE_DIR


def run_node_peers(folder: Path, *, ciphers: str | None = None, name: str = "node") -> TlsRun:
    """Node ``ws`` over https on loopback, captured; the server's keylog event wrote the
    key log."""
    node_dir = node_ws_installed()
    cert, key = make_cert(folder)
    port = free_port()
    pcap, keylog, truth = (folder / f"{name}.pcap", folder / f"{name}.keys.txt",
                           folder / f"{name}.truth.jsonl")
    cmd = ["node", str(node_dir / "wss_peers.js"), str(port), str(cert), str(key), str(keylog),
           str(truth)] + ([ciphers] if ciphers else [])
    with Tcpdump(pcap, f"tcp port {port}"):
        subprocess.run(cmd, check=True, timeout=120, cwd=node_dir)
    rows = [json.loads(line) for line in truth.read_text().splitlines()]
    return TlsRun(pcap, keylog, rows, port)


def tshark_frames(run: TlsRun, keylog: Path) -> list[tuple[int, int, int]]:
    out = subprocess.run(
        [shutil.which("tshark") or "tshark", "-r", str(run.pcap), "-o",
         f"tls.keylog_file:{keylog}", "-d", f"tcp.port=={run.port},tls", "-Y", "websocket",
         "-T", "fields", "-e", "frame.number", "-e", "websocket.opcode",
         "-e", "websocket.payload_length", "-E", "occurrence=a"],
        capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        number, opcodes, lengths = line.split("\t")
        for op, length in zip(opcodes.split(","), lengths.split(","), strict=True):
            rows.append((int(number), int(op), int(length)))
    return rows
