"""TLS material for the project's broker: a self-signed CA and a broker certificate for
127.0.0.1 signed by it, made with the ``openssl`` command (no Python dependency).

Kafka reads PEM keystores (KIP-651): ``ssl.keystore.type=PEM`` with a file holding the broker's
private key (PKCS#8) and its certificate chain. Clients trust ``ca.pem``
(``ssl.ca.location`` for confluent-kafka, ``ssl_cafile`` for kafka-python); the certificate names
the IP address 127.0.0.1, so hostname verification stays on.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Long enough for any test session or local experiment; the files are remade when missing.
VALID_DAYS = 30
# One openssl call makes a 2048-bit RSA key in well under a second; 60 s only bounds a hang.
OPENSSL_TIMEOUT_S = 60.0


class TlsError(RuntimeError):
    """The TLS files could not be made (openssl missing or failing); one line."""


@dataclass(frozen=True)
class TlsFiles:
    """The CA certificate clients trust and the broker's PEM keystore (key + chain)."""

    ca: Path
    keystore: Path


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TlsError("openssl not found: install it to start the broker with --tls")
    proc = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=OPENSSL_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise TlsError(f"openssl {args[0]} failed: {proc.stderr.strip().splitlines()[-1:]}")


def ensure_tls(directory: Path, host: str = "127.0.0.1") -> TlsFiles:
    """Make (once) a CA and a broker certificate for ``host`` under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "broker-keystore.pem")
    if files.ca.exists() and files.keystore.exists():
        return files
    days = str(VALID_DAYS)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.pem", "-days", days, "-subj", "/CN=driftflow test CA", cwd=directory)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out",
             "broker.csr", "-subj", f"/CN={host}", cwd=directory)
    (directory / "san.ext").write_text(f"subjectAltName=IP:{host}\n")
    _openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "broker.pem", "-days", days, "-extfile", "san.ext",
             cwd=directory)
    _openssl("pkcs8", "-topk8", "-nocrypt", "-in", "broker.key", "-out", "broker-pk8.key",
             cwd=directory)
    keystore = ((directory / "broker-pk8.key").read_text() + (directory / "broker.pem").read_text()
                + files.ca.read_text())
    files.keystore.write_text(keystore)
    for name in ("ca.key", "broker.key", "broker-pk8.key", "broker-keystore.pem"):
        (directory / name).chmod(0o600)
    return files
