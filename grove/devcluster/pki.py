"""Certificates and keys for the local control plane.

Every cluster gets a fresh CA so that two clusters (a test session and a sandbox, say) never trust each
other's clients, and nothing secret is ever committed or reused. Keys are ECDSA P-256: generating them takes
microseconds, unlike RSA, which keeps `DevCluster.start()` fast.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Long enough for a sandbox left running for a while, short enough that a leaked key is worthless soon.
VALIDITY = dt.timedelta(days=30)
# Client certificates for the admin identity: the group makes RBAC treat it as a superuser (and APF exempt).
ADMIN_USER = "grove-admin"
ADMIN_GROUP = "system:masters"
# The apiserver's identity towards aggregated API servers (and what lets the controller-manager and scheduler
# load a complete `extension-apiserver-authentication` ConfigMap instead of logging errors forever).
FRONT_PROXY_USER = "front-proxy-client"


@dataclass(frozen=True)
class PKIFiles:
    """Paths of the PEM files that the components and the kubeconfig read."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    sa_key: Path
    sa_pub: Path
    admin_cert: Path
    admin_key: Path
    front_proxy_cert: Path
    front_proxy_key: Path


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def make_ca(common_name: str = "grove-devcluster-ca") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Create a self-signed CA that signs both the serving cert and the client certs."""
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # tolerate small clock differences
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue_cert(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    *,
    organizations: tuple[str, ...] = (),
    server: bool = False,
    client: bool = False,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Issue a leaf certificate signed by the CA.

    For client certs the apiserver maps CN to the user name and each O to a group, which is how the admin
    identity gets `system:masters`.
    """
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organizations))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


# Names the in-cluster clients (and kubectl against 127.0.0.1 or localhost) may use for the apiserver.
SERVING_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
SERVING_IPS = ("127.0.0.1", "10.96.0.1")


def write_pki(directory: Path) -> PKIFiles:
    """Generate a fresh CA, apiserver serving cert, service-account key pair and admin client cert.

    Private keys are written with mode 0600: the directory may live in a shared checkout.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = make_ca()
    serving_cert, serving_key = issue_cert(
        ca_cert,
        ca_key,
        "kube-apiserver",
        server=True,
        dns_names=SERVING_DNS_NAMES,
        ip_addresses=SERVING_IPS,
    )
    admin_cert, admin_key = issue_cert(ca_cert, ca_key, ADMIN_USER, organizations=(ADMIN_GROUP,), client=True)
    proxy_cert, proxy_key = issue_cert(ca_cert, ca_key, FRONT_PROXY_USER, client=True)
    sa_key = _new_key()
    files = PKIFiles(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        sa_key=directory / "sa.key",
        sa_pub=directory / "sa.pub",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        front_proxy_cert=directory / "front-proxy-client.crt",
        front_proxy_key=directory / "front-proxy-client.key",
    )
    _write(files.ca_cert, _cert_pem(ca_cert))
    _write(files.ca_key, _key_pem(ca_key), secret=True)
    _write(files.serving_cert, _cert_pem(serving_cert))
    _write(files.serving_key, _key_pem(serving_key), secret=True)
    _write(files.admin_cert, _cert_pem(admin_cert))
    _write(files.admin_key, _key_pem(admin_key), secret=True)
    _write(files.front_proxy_cert, _cert_pem(proxy_cert))
    _write(files.front_proxy_key, _key_pem(proxy_key), secret=True)
    _write(files.sa_key, _key_pem(sa_key), secret=True)
    _write(
        files.sa_pub,
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    )
    return files


def _write(path: Path, data: bytes, *, secret: bool = False) -> None:
    path.write_bytes(data)
    if secret:
        path.chmod(0o600)
