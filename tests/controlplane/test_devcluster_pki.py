"""Unit tests (no cluster) for certificate generation and kubeconfig writing."""

from __future__ import annotations

import base64
import ipaddress
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from grove.devcluster.kubeconfig import build_kubeconfig, write_kubeconfig
from grove.devcluster.pki import ADMIN_GROUP, FRONT_PROXY_USER, PKIFiles, write_pki


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKIFiles:
    return write_pki(tmp_path_factory.mktemp("pki"))


def test_leaf_certs_are_signed_by_the_ca(pki: PKIFiles) -> None:
    ca = _load(pki.ca_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    for leaf_path in (pki.serving_cert, pki.admin_cert, pki.front_proxy_cert):
        leaf = _load(leaf_path)
        leaf.verify_directly_issued_by(ca)  # raises if the signature or issuer does not match
        assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_serving_cert_names_cover_how_clients_connect(pki: PKIFiles) -> None:
    cert = _load(pki.serving_cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert {"localhost", "kubernetes.default.svc"} <= set(san.get_values_for_type(x509.DNSName))
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage


def test_admin_cert_is_a_system_masters_client(pki: PKIFiles) -> None:
    cert = _load(pki.admin_cert)
    orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert orgs == [ADMIN_GROUP]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usage
    assert ExtendedKeyUsageOID.SERVER_AUTH not in usage
    proxy = _load(pki.front_proxy_cert)
    assert proxy.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == FRONT_PROXY_USER


def test_private_keys_are_private_and_sa_pair_matches(pki: PKIFiles) -> None:
    from cryptography.hazmat.primitives import serialization

    for key_path in (pki.ca_key, pki.serving_key, pki.admin_key, pki.sa_key, pki.front_proxy_key):
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600, key_path
    private = serialization.load_pem_private_key(pki.sa_key.read_bytes(), password=None)
    public = serialization.load_pem_public_key(pki.sa_pub.read_bytes())
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert private.public_key().public_numbers() == public.public_numbers()  # type: ignore[union-attr]


def test_every_cluster_gets_a_fresh_ca(tmp_path: Path, pki: PKIFiles) -> None:
    other = write_pki(tmp_path)
    assert _load(other.ca_cert).fingerprint(_hash()) != _load(pki.ca_cert).fingerprint(_hash())


def _hash() -> hashes.SHA256:
    return hashes.SHA256()


def test_kubeconfig_embeds_credentials_and_loads_in_the_client(tmp_path: Path, pki: PKIFiles) -> None:
    from kubernetes import client, config

    path = write_kubeconfig(
        tmp_path / "sub" / "kubeconfig", "https://127.0.0.1:6443", pki.ca_cert, pki.admin_cert, pki.admin_key
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = yaml.safe_load(path.read_text())
    assert doc["current-context"] == doc["contexts"][0]["name"]
    user = doc["users"][0]["user"]
    assert base64.b64decode(user["client-certificate-data"]) == pki.admin_cert.read_bytes()
    assert base64.b64decode(user["client-key-data"]) == pki.admin_key.read_bytes()
    ca = doc["clusters"][0]["cluster"]["certificate-authority-data"]
    assert base64.b64decode(ca) == pki.ca_cert.read_bytes()

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=cfg)
    assert cfg.host == "https://127.0.0.1:6443"
    assert Path(cfg.cert_file).read_bytes() == pki.admin_cert.read_bytes()
    assert cfg.verify_ssl is True


def test_build_kubeconfig_names(pki: PKIFiles) -> None:
    doc = build_kubeconfig("https://x:1", pki.ca_cert, pki.admin_cert, pki.admin_key, name="c1", user="u1")
    assert doc["contexts"] == [{"name": "c1", "context": {"cluster": "c1", "user": "u1", "namespace": "default"}}]
