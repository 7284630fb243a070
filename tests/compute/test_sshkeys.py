"""SSH public keys: parsing, validation and fingerprints identical to `ssh-keygen -l`; the key services."""

import shutil
import subprocess

import pytest
from django.core.exceptions import ValidationError

from compute.models import SSHKey
from compute.services import sshkey_create, sshkey_delete
from compute.sshkeys import parse_public_key
from portal.errors import InvalidRequest
from tests.factories.compute import SSHKeyFactory, new_public_key

needs_ssh_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")


def _keygen(tmp_path, *args) -> tuple[str, str, int]:
    """Generates a key with ssh-keygen; returns (public key line, ssh-keygen's fingerprint, its bit count)."""
    path = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-C", "me@laptop", "-f", str(path), *args], check=True)
    listing = subprocess.run(["ssh-keygen", "-l", "-f", str(path) + ".pub"], check=True, capture_output=True, text=True)
    bits, fingerprint = listing.stdout.split()[:2]
    return (tmp_path / "key.pub").read_text(), fingerprint, int(bits)


@needs_ssh_keygen
@pytest.mark.parametrize(
    ("args", "key_type"),
    [
        (["-t", "ed25519"], "ssh-ed25519"),
        (["-t", "ecdsa", "-b", "256"], "ecdsa-sha2-nistp256"),
        (["-t", "ecdsa", "-b", "384"], "ecdsa-sha2-nistp384"),
        (["-t", "ecdsa", "-b", "521"], "ecdsa-sha2-nistp521"),
        (["-t", "rsa", "-b", "2048"], "ssh-rsa"),
        (["-t", "rsa", "-b", "4096"], "ssh-rsa"),
    ],
)
def test_valid_keys_are_fingerprinted_like_ssh_keygen(tmp_path, args, key_type):
    line, expected_fingerprint, expected_bits = _keygen(tmp_path, *args)

    parsed = parse_public_key(line)

    assert parsed.fingerprint == expected_fingerprint
    assert parsed.fingerprint.startswith("SHA256:")
    assert parsed.bits == expected_bits
    assert parsed.key_type == key_type
    assert parsed.comment == "me@laptop"
    assert parsed.normalized == line.strip()


@needs_ssh_keygen
def test_rsa_1024_is_refused(tmp_path):
    line, _, _ = _keygen(tmp_path, "-t", "rsa", "-b", "1024")
    with pytest.raises(ValidationError, match="only 1024 bits"):
        parse_public_key(line)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "Paste a public key"),
        ("   \n ", "Paste a public key"),
        ("hello world", "not supported"),
        ("ssh-ed25519", "type and the key itself"),
        ("ssh-ed25519 not!!base64", "not valid base64"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBadKey", "not valid base64"),
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "not supported"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "private key"),
        ("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", "data is not"),
        ("x" * 20000, "too long"),
    ],
)
def test_garbage_is_refused_with_a_clear_message(text, fragment):
    with pytest.raises(ValidationError) as caught:
        parse_public_key(text)
    assert fragment in caught.value.messages[0]


def test_truncated_key_is_refused():
    line = new_public_key()
    key_type, encoded, _ = line.split(" ", 2)
    with pytest.raises(ValidationError):
        parse_public_key(f"{key_type} {encoded[:-8]}")


def test_two_keys_at_once_are_refused():
    with pytest.raises(ValidationError, match="exactly one"):
        parse_public_key(new_public_key() + "\n" + new_public_key())


def test_model_field_validator_refuses_garbage(tenant):
    key = SSHKey(tenant=tenant, name="bad", public_key="garbage", fingerprint="x", key_type="x", bits=1)
    with pytest.raises(ValidationError) as caught:
        key.full_clean()
    assert "public_key" in caught.value.message_dict


def test_sshkey_create_stores_the_fingerprint(tenant, member):
    line = new_public_key("dana@laptop")

    key = sshkey_create(tenant=tenant, user=member, name=" laptop ", public_key="  " + line + "\n")

    assert key.name == "laptop"
    assert key.public_key == line
    assert key.fingerprint == parse_public_key(line).fingerprint
    assert (key.key_type, key.bits, key.created_by) == ("ssh-ed25519", 256, member)


def test_sshkey_create_refuses_garbage_as_bad_input(tenant, member):
    with pytest.raises(InvalidRequest) as caught:
        sshkey_create(tenant=tenant, user=member, name="laptop", public_key="garbage")
    assert caught.value.code == "invalid_key"
    assert not SSHKey.objects.exists()


def test_the_same_key_twice_in_one_tenant_is_refused(tenant, member):
    line = new_public_key()
    sshkey_create(tenant=tenant, user=member, name="laptop", public_key=line)

    with pytest.raises(InvalidRequest) as caught:
        sshkey_create(tenant=tenant, user=member, name="desktop", public_key=line.rsplit(" ", 1)[0] + " other")
    assert caught.value.code == "duplicate_key"
    assert "laptop" in caught.value.message


def test_the_same_name_twice_in_one_tenant_is_refused(tenant, member):
    sshkey_create(tenant=tenant, user=member, name="laptop", public_key=new_public_key())
    with pytest.raises(InvalidRequest) as caught:
        sshkey_create(tenant=tenant, user=member, name="laptop", public_key=new_public_key())
    assert caught.value.code == "duplicate_name"


def test_another_tenant_may_hold_the_same_key(tenant, member, outsider):
    line = new_public_key()
    sshkey_create(tenant=tenant, user=member, name="laptop", public_key=line)
    other = outsider.memberships.get().tenant

    sshkey_create(tenant=other, user=outsider, name="laptop", public_key=line)

    assert SSHKey.objects.filter(fingerprint=parse_public_key(line).fingerprint).count() == 2


def test_sshkey_delete(tenant, member):
    key = SSHKeyFactory(tenant=tenant)
    sshkey_delete(key=key, user=member)
    assert not SSHKey.objects.exists()
