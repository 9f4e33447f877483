"""Certificates and keys for the local kube-apiserver.

The API server serves TLS and authenticates clients by certificate (CN = user,
O = groups), exactly as a real cluster does; the admin user is in
``system:masters``. The service-account key pair lets the API server sign
tokens, which is what makes the TokenRequest API work.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class ClusterPki:
    """Paths of every PEM file the control plane needs."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    admin_cert: Path
    admin_key: Path
    sa_public_key: Path
    sa_private_key: Path
    # How the API server authenticates to kubelets (logs, exec).
    kubelet_client_cert: Path
    kubelet_client_key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
    server_ips: tuple[str, ...] = (),
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
                    *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips),
                ]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def create_cluster_pki(directory: Path, server_ips: tuple[str, ...] = ()) -> ClusterPki:
    """Create a CA, a serving certificate for 127.0.0.1 (and ``server_ips``), an
    admin client certificate and a service-account signing key pair under
    ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("mediaflow-local-ca")
    ca_cert = _issue(ca_name, ca_key, ca_name, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _issue(
        _name("kube-apiserver"), server_key, ca_name, ca_key, server=True, server_ips=server_ips
    )
    admin_key = ec.generate_private_key(ec.SECP256R1())
    admin_cert = _issue(_name("mediaflow-admin", "system:masters"), admin_key, ca_name, ca_key)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kubelet_client_key = ec.generate_private_key(ec.SECP256R1())
    kubelet_client_cert = _issue(
        _name("kube-apiserver-kubelet-client", "system:masters"),
        kubelet_client_key,
        ca_name,
        ca_key,
    )

    pki = ClusterPki(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        server_cert=directory / "apiserver.crt",
        server_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        sa_public_key=directory / "sa.pub",
        sa_private_key=directory / "sa.key",
        kubelet_client_cert=directory / "apiserver-kubelet-client.crt",
        kubelet_client_key=directory / "apiserver-kubelet-client.key",
    )
    pem = serialization.Encoding.PEM
    pki.ca_cert.write_bytes(ca_cert.public_bytes(pem))
    _write_key(pki.ca_key, ca_key)
    pki.server_cert.write_bytes(server_cert.public_bytes(pem))
    _write_key(pki.server_key, server_key)
    pki.admin_cert.write_bytes(admin_cert.public_bytes(pem))
    _write_key(pki.admin_key, admin_key)
    _write_key(pki.sa_private_key, sa_key)
    pki.kubelet_client_cert.write_bytes(kubelet_client_cert.public_bytes(pem))
    _write_key(pki.kubelet_client_key, kubelet_client_key)
    pki.sa_public_key.write_bytes(
        sa_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return pki


def issue_client_certificate(
    pki: ClusterPki, directory: Path, user: str, group: str | None = None
) -> tuple[Path, Path]:
    """A client certificate for ``user`` (CN) in ``group`` (O), signed by the
    cluster CA: how the kubelet (``system:node:<name>`` in ``system:nodes``) and
    the other node components authenticate. Returns (certificate, key) paths."""
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_name = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes()).subject
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue(_name(user, group), key, ca_name, ca_key)
    stem = user.replace(":", "-")
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key_path, key)
    return cert_path, key_path
