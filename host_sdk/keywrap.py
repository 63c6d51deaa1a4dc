"""The per-key secret's wrap to one lock: the ``cnf`` Encrypted_COSE_Key (docs/protocol.md §4).

An untagged COSE_Encrypt (RFC 9052 §5.1) with content algorithm AES-CCM-16-128-128
(COSE alg 30, RFC 9053 §4.2, RFC 3610) and one recipient using ECDH-ES + HKDF-256
(COSE alg -25, RFC 9053 §6.3.1) over X25519 (RFC 7748). The content key is
HKDF-SHA-256 (RFC 5869) with no salt, IKM = the X25519 shared secret and
info = the COSE_KDF_Context (RFC 9053 §5.2). Plaintext: ``COSE_Key {1: 4, -1: K}``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from . import cbor
from .errors import ErrorCode, ProtocolError
from .keys import lock_key_id as _lock_key_id
from .protocol import (
    ALG_AES_CCM_16_128_128,
    ALG_ECDH_ES_HKDF_256,
    CNF_ENCRYPTED_KEY,
    COSE_KEY_CRV,
    COSE_KEY_K,
    COSE_KEY_KTY,
    COSE_KEY_X,
    CRV_X25519,
    HDR_ALG,
    HDR_EPHEMERAL_KEY,
    HDR_IV,
    HDR_KID,
    KTY_OKP,
    KTY_SYMMETRIC,
    SECRET_LEN,
    WRAP_IV_LEN,
    WRAP_KEY_BITS,
    WRAP_TAG_LEN,
)

CNF_ENCRYPTED_COSE_KEY = CNF_ENCRYPTED_KEY
IV_LEN = WRAP_IV_LEN
_X_LEN = 32  # an X25519 public key (RFC 7748)
_PROT_CONTENT = cbor.dumps({HDR_ALG: ALG_AES_CCM_16_128_128})
_PROT_RECIPIENT = cbor.dumps({HDR_ALG: ALG_ECDH_ES_HKDF_256})


def kdf_context(recipient_protected: bytes) -> bytes:
    """COSE_KDF_Context for a 128-bit AES-CCM key (RFC 9053 §5.2), deterministically encoded."""
    return cbor.dumps([ALG_AES_CCM_16_128_128, [None, None, None], [None, None, None],
                       [WRAP_KEY_BITS, recipient_protected]])


def enc_structure(content_protected: bytes) -> bytes:
    """Enc_structure (RFC 9052 §5.3) with empty external AAD: the AES-CCM AAD."""
    return cbor.dumps(["Encrypt", content_protected, b""])


def _derive(shared: bytes, recipient_protected: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=WRAP_KEY_BITS // 8, salt=None,
                info=kdf_context(recipient_protected)).derive(shared)


def wrap_secret(secret: bytes, lock_kex_public: bytes, *,
                rng: Callable[[int], bytes] | None = None) -> dict[int, Any]:
    """Encrypt the 32-byte key secret to a lock's X25519 public key.

    Returns the ``cnf`` claim value ``{2: COSE_Encrypt}`` as CBOR-able Python. ``rng``
    (default ``os.urandom``) supplies the ephemeral private key (32 bytes) then the IV (13).
    """
    if len(secret) != SECRET_LEN:
        raise ValueError("the per-key secret must be 32 bytes")
    return wrap_plaintext(_cose_key(secret), lock_kex_public,
                          rng=rng or os.urandom)


def _cose_key(secret: bytes) -> bytes:
    """The symmetric COSE_Key ``{kty: Symmetric, k: K}`` (RFC 9053 §7.4) the wrap encrypts."""
    return cbor.dumps({COSE_KEY_KTY: KTY_SYMMETRIC, COSE_KEY_K: bytes(secret)})


def wrap_plaintext(plaintext: bytes, lock_kex_public: bytes, *,
                   rng: Callable[[int], bytes]) -> dict[int, Any]:
    """Low level: the §4 wrap of arbitrary plaintext bytes (tests build bad COSE_Keys)."""
    r = rng
    eph = X25519PrivateKey.from_private_bytes(r(32))
    iv = r(IV_LEN)
    eph_x = eph.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shared = eph.exchange(X25519PublicKey.from_public_bytes(bytes(lock_kex_public)))
    cek = _derive(shared, _PROT_RECIPIENT)
    ciphertext = AESCCM(cek, tag_length=WRAP_TAG_LEN).encrypt(iv, plaintext,
                                                              enc_structure(_PROT_CONTENT))
    eph_key = {COSE_KEY_KTY: KTY_OKP, COSE_KEY_CRV: CRV_X25519, COSE_KEY_X: eph_x}
    recipient = [_PROT_RECIPIENT, {HDR_EPHEMERAL_KEY: eph_key,
                                   HDR_KID: _lock_key_id(lock_kex_public)}, b""]
    return {CNF_ENCRYPTED_COSE_KEY: [_PROT_CONTENT, {HDR_IV: iv}, ciphertext, [recipient]]}


def new_wrapped_secret(lock_kex_public: bytes, *,
                       rng: Callable[[int], bytes] | None = None) -> tuple[bytes, bytes]:
    """The phone's side of key custody: draw a fresh 32-byte secret K and wrap it to the
    lock's X25519 key. Returns ``(K, cnf)`` where ``cnf`` is the canonical CBOR of the
    ``cnf`` claim value, what the phone sends the key server (which never sees K).
    ``rng`` (default ``os.urandom``) supplies K, then the wrap's ephemeral key and IV."""
    r = rng or os.urandom
    secret = r(SECRET_LEN)
    return secret, cbor.dumps(wrap_secret(secret, lock_kex_public, rng=r))


MAX_WRAP = 256
_CIPHERTEXT_LEN = len(_cose_key(bytes(SECRET_LEN))) + WRAP_TAG_LEN  # COSE_Key + CCM tag


def check_wrap_form(cnf: bytes, lock_kex_public: bytes) -> dict[int, Any]:
    """The key server's check of a wrap the phone made (§4): exactly the form
    :func:`wrap_secret` produces, canonically encoded, naming ``lock_kex_public``'s lock key
    ID, with an ephemeral key that is a usable X25519 point. The ciphertext itself cannot be
    checked without the lock's private key (that is the point). Returns the ``cnf`` map to
    sign into the credential. Raises ProtocolError: WRONG_RECIPIENT when the wrap names
    another lock key, BAD_KEY_WRAP for anything else."""
    data = bytes(cnf)
    if len(data) > MAX_WRAP:
        raise _bad(f"wrap of {len(data)} bytes > {MAX_WRAP}")
    try:
        value = cbor.loads(data, max_size=MAX_WRAP)
    except ProtocolError as exc:
        raise _bad(f"wrap is not valid CBOR ({exc.detail})") from None
    if cbor.dumps(value) != data:
        raise _bad("wrap is not in deterministic CBOR encoding")
    if not isinstance(value, dict) or list(value) != [CNF_ENCRYPTED_COSE_KEY]:
        raise _bad("cnf must be a map with only key 2 (Encrypted_COSE_Key)")
    kid = recipient_key_id(value)
    if kid != _lock_key_id(lock_kex_public):
        raise ProtocolError(ErrorCode.WRONG_RECIPIENT,
                            "the wrap names another lock key than this lock's current one")
    cpb, cunprot, ct, recips = value[CNF_ENCRYPTED_COSE_KEY]
    rpb, runprot, rct = recips[0]
    if cpb != _PROT_CONTENT or rpb != _PROT_RECIPIENT or rct != b"":
        raise _bad("algorithms are not AES-CCM-16-128-128 with ECDH-ES + HKDF-256")
    if not isinstance(cunprot, dict) or list(cunprot) != [HDR_IV] \
            or not isinstance(cunprot[HDR_IV], bytes) or len(cunprot[HDR_IV]) != IV_LEN:
        raise _bad("the content header must be exactly a 13-byte IV")
    if not isinstance(ct, bytes) or len(ct) != _CIPHERTEXT_LEN:
        raise _bad(f"ciphertext must be {_CIPHERTEXT_LEN} bytes (a wrapped 32-byte COSE_Key)")
    eph = runprot.get(HDR_EPHEMERAL_KEY)
    if set(runprot) != {HDR_EPHEMERAL_KEY, HDR_KID} or not isinstance(eph, dict) \
            or set(eph) != {COSE_KEY_KTY, COSE_KEY_CRV, COSE_KEY_X} \
            or not _int_is(eph[COSE_KEY_KTY], KTY_OKP) \
            or not _int_is(eph[COSE_KEY_CRV], CRV_X25519):
        raise _bad("the recipient header must be an X25519 ephemeral key and the lock key ID")
    x = eph[COSE_KEY_X]
    if not isinstance(x, bytes) or len(x) != _X_LEN:
        raise _bad("ephemeral key is not 32 bytes")
    try:  # a low-order point would give the lock an all-zero shared secret
        X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(x))
    except ValueError:
        raise _bad("ephemeral key is a low-order point") from None
    return value


def _int_is(value: Any, n: int) -> bool:
    return type(value) is int and value == n


def _bad(detail: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_KEY_WRAP, detail)


def _cose_encrypt(cose_encrypt: Any) -> Any:
    if isinstance(cose_encrypt, dict):
        return cose_encrypt.get(CNF_ENCRYPTED_COSE_KEY)
    return cose_encrypt


def recipient_key_id(cose_encrypt: Any) -> bytes:
    """The lock key ID a wrapped key names (recipient header 4); BAD_KEY_WRAP if absent."""
    enc = _cose_encrypt(cose_encrypt)
    if not isinstance(enc, list) or len(enc) != 4:
        raise _bad("COSE_Encrypt is not a 4-element array")
    recips = enc[3]
    if not isinstance(recips, list) or len(recips) != 1:
        raise _bad("COSE_Encrypt must have exactly one recipient")
    r = recips[0]
    if not isinstance(r, list) or len(r) != 3 or not isinstance(r[1], dict):
        raise _bad("malformed COSE_recipient")
    kid = r[1].get(HDR_KID)
    if not isinstance(kid, bytes):
        raise _bad("recipient names no lock key ID")
    return kid


def unwrap_secret(cose_encrypt: Any, lock_kex_private: bytes, lock_key_id: bytes) -> bytes:
    """Recover the 32-byte secret K (§4) as the lock does.

    ``cose_encrypt`` is the ``cnf`` map ``{2: [...]}`` or the COSE_Encrypt array itself.
    Raises ProtocolError(WRONG_RECIPIENT) if it is wrapped to another lock key, and
    ProtocolError(BAD_KEY_WRAP) on any structural, agreement, tag or plaintext failure.
    """
    kid = recipient_key_id(cose_encrypt)
    if kid != bytes(lock_key_id):
        raise ProtocolError(ErrorCode.WRONG_RECIPIENT,
                            f"wrapped to lock key {kid.hex()}, this lock is "
                            f"{bytes(lock_key_id).hex()}")
    enc = _cose_encrypt(cose_encrypt)
    cpb, cunprot, ct, recips = enc
    rpb, runprot, rct = recips[0]
    if not (isinstance(cpb, bytes) and isinstance(cunprot, dict) and isinstance(ct, bytes)):
        raise _bad("COSE_Encrypt element of the wrong type")
    if not isinstance(rpb, bytes) or not isinstance(rct, bytes) or rct:
        raise _bad("recipient must be direct key agreement with empty ciphertext")
    try:
        cprot = cbor.loads(cpb)
        rprot = cbor.loads(rpb)
    except ProtocolError:
        raise _bad("protected header is not valid CBOR") from None
    if not isinstance(cprot, dict) or type(cprot.get(HDR_ALG)) is not int \
            or cprot.get(HDR_ALG) != ALG_AES_CCM_16_128_128:
        raise _bad("content algorithm is not AES-CCM-16-128-128")
    if not isinstance(rprot, dict) or type(rprot.get(HDR_ALG)) is not int \
            or rprot.get(HDR_ALG) != ALG_ECDH_ES_HKDF_256:
        raise _bad("recipient algorithm is not ECDH-ES + HKDF-256")
    iv = cunprot.get(HDR_IV)
    eph = runprot.get(HDR_EPHEMERAL_KEY)
    if not isinstance(iv, bytes) or len(iv) != IV_LEN or not isinstance(eph, dict):
        raise _bad("missing IV or ephemeral key")
    x = eph.get(COSE_KEY_X)
    if not _int_is(eph.get(COSE_KEY_KTY), KTY_OKP) \
            or not _int_is(eph.get(COSE_KEY_CRV), CRV_X25519) or not isinstance(x, bytes) \
            or len(x) != _X_LEN:
        raise _bad("ephemeral key is not an X25519 OKP key")
    try:
        shared = X25519PrivateKey.from_private_bytes(bytes(lock_kex_private)).exchange(
            X25519PublicKey.from_public_bytes(x))
    except ValueError:
        raise _bad("key agreement failed (low-order point)") from None
    if shared == bytes(32):
        raise _bad("all-zero shared secret")
    cek = _derive(shared, rpb)
    try:
        pt = AESCCM(cek, tag_length=WRAP_TAG_LEN).decrypt(iv, ct, enc_structure(cpb))
    except (InvalidTag, ValueError):
        raise _bad("AES-CCM authentication failed") from None
    try:
        key = cbor.loads(pt)
    except ProtocolError:
        raise _bad("plaintext is not a COSE_Key") from None
    if not isinstance(key, dict) or not _int_is(key.get(COSE_KEY_KTY), KTY_SYMMETRIC):
        raise _bad("plaintext is not a symmetric COSE_Key")
    k = key.get(COSE_KEY_K)
    if not isinstance(k, bytes) or len(k) != SECRET_LEN:
        raise _bad("symmetric key is not 32 bytes")
    return k
