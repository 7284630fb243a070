"""Parsing, validation and fingerprinting of OpenSSH public keys (the `authorized_keys` one-line format)."""

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from django.core.exceptions import ValidationError

MIN_RSA_BITS = 2048
MAX_KEY_LENGTH = 16 * 1024  # an 16384-bit RSA key is about 2.8 KB; anything much longer is not a key

SUPPORTED_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)


@dataclass(frozen=True)
class ParsedKey:
    key_type: str  # the OpenSSH type name, e.g. "ssh-ed25519"
    bits: int
    fingerprint: str  # "SHA256:…", exactly as `ssh-keygen -l` prints it
    comment: str
    normalized: str  # "type base64 [comment]" on one line

    @property
    def label(self) -> str:
        """ "ED25519", "ECDSA", "RSA": the name ssh-keygen puts in brackets."""
        if self.key_type == "ssh-ed25519":
            return "ED25519"
        if self.key_type.startswith("ecdsa-"):
            return "ECDSA"
        return "RSA"


def fingerprint_sha256(blob: bytes) -> str:
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _blob_type(blob: bytes) -> str:
    """The key type written inside the base64 blob (it must agree with the one in front of it)."""
    if len(blob) < 4:
        return ""
    (length,) = struct.unpack(">I", blob[:4])
    return blob[4 : 4 + length].decode("ascii", errors="replace")


def parse_public_key(text: str) -> ParsedKey:
    """Parses one OpenSSH public key; anything else raises ValidationError with a message a user can act on."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("Paste a public key, e.g. the contents of ~/.ssh/id_ed25519.pub.", code="empty")
    if len(text) > MAX_KEY_LENGTH:
        raise ValidationError("This is too long to be an SSH public key.", code="too_long")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) != 1:
        raise ValidationError("Paste exactly one public key, on one line.", code="multiple")
    line = lines[0].strip()
    if "PRIVATE KEY" in line or line.startswith("-----"):
        raise ValidationError(
            "This looks like a private key or a PEM file. Paste the public key (the .pub file) and keep the private "
            "key secret.",
            code="private_key",
        )
    parts = line.split(None, 2)
    if len(parts) < 2:
        raise ValidationError(
            "An SSH public key has a type and the key itself, e.g. “ssh-ed25519 AAAA… you@laptop”.", code="format"
        )
    key_type, encoded = parts[0], parts[1]
    comment = parts[2].strip() if len(parts) > 2 else ""
    if key_type not in SUPPORTED_TYPES:
        raise ValidationError(
            f"Keys of type “{key_type[:40]}” are not supported; use ed25519 (recommended), ECDSA or RSA (at least "
            f"{MIN_RSA_BITS} bits).",
            code="unsupported_type",
        )
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("The key part is not valid base64; copy the whole line again.", code="base64") from None
    if _blob_type(blob) != key_type:
        raise ValidationError(
            f"The key says it is {key_type} but its data is not; copy the whole line again.", code="mismatch"
        )
    try:
        key = load_ssh_public_key(f"{key_type} {encoded}".encode())
    except (ValueError, UnsupportedAlgorithm):
        raise ValidationError(
            "This is not a valid SSH public key; copy the whole line again.", code="invalid"
        ) from None
    if isinstance(key, ed25519.Ed25519PublicKey):
        bits = 256
    elif isinstance(key, ec.EllipticCurvePublicKey):
        bits = key.curve.key_size
    elif isinstance(key, rsa.RSAPublicKey):
        bits = key.key_size
        if bits < MIN_RSA_BITS:
            raise ValidationError(
                f"This RSA key has only {bits} bits; use at least {MIN_RSA_BITS} (or, better, an ed25519 key).",
                code="too_weak",
            )
    else:  # pragma: no cover - the type check above admits only the three families
        raise ValidationError("This key type is not supported.", code="unsupported_type")
    normalized = f"{key_type} {encoded}" + (f" {comment}" if comment else "")
    return ParsedKey(
        key_type=key_type, bits=bits, fingerprint=fingerprint_sha256(blob), comment=comment, normalized=normalized
    )
