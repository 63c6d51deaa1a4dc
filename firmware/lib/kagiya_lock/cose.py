"""COSE (RFC 9052) for the lock: COSE_Sign1 parse/verify and the §4 key unwrap.

Only what protocol v1 uses: EdDSA (-8) signatures over the Sig_structure
``["Signature1", protected, h'', payload]`` (RFC 9052 §4.4), and an Encrypted_COSE_Key
(RFC 8747 §3.3): COSE_Encrypt with AES-CCM-16-128-128 (30) content encryption and one
ECDH-ES + HKDF-256 (-25) recipient over X25519 (RFC 9053 §6.3.1, RFC 7748).
Every function returns an error code of §13 instead of raising.
"""

from micropython import const

from kagiya_lock import aesccm, cbor, ed25519, errors, hkdf, x25519

ALG_EDDSA = const(-8)
ALG_CCM_16_128_128 = const(30)
ALG_ECDH_ES_HKDF_256 = const(-25)
_EMPTY = b""


def _is(v, n):
    """True iff ``v`` is the integer ``n`` (``True`` is not 1 here)."""
    return type(v) is int and v == n


def parse_sign1(data, max_size):
    """Split a tagged COSE_Sign1; returns ((prot_bytes, prot, payload, sig), code)."""
    v, code = cbor.decode(data, 18, max_size)
    if code:
        return None, code
    if type(v) is not list or len(v) != 4:
        return None, errors.MALFORMED
    pb, unprot, payload, sig = v
    if type(pb) is not bytes or type(unprot) is not dict:
        return None, errors.MALFORMED
    if type(payload) is not bytes or type(sig) is not bytes:
        return None, errors.MALFORMED
    if pb:
        prot, code = cbor.decode(pb)
        if code or type(prot) is not dict:
            return None, errors.MALFORMED
    else:
        prot = {}
    return (pb, prot, payload, sig), errors.OK


def check_header(parts, anchors, content_type):
    """Steps 2-3 of §3: alg, content type, issuer ``kid``; returns (public key, code)."""
    prot = parts[1]
    alg = prot.get(1)
    if type(alg) is not int or alg != ALG_EDDSA:
        return None, errors.WRONG_ALGORITHM
    ct = prot.get(3)
    if type(ct) is not type(content_type) or ct != content_type:
        return None, errors.WRONG_CONTENT_TYPE
    kid = prot.get(4)
    pk = anchors.get(kid) if type(kid) is bytes else None
    if pk is None:
        return None, errors.UNKNOWN_ISSUER
    return pk, errors.OK


def signature_ok(parts, pk):
    """Step 4 of §3: the Ed25519 signature over the Sig_structure (the expensive step;
    callers check every cheap field first)."""
    pb, _prot, payload, sig = parts
    return ed25519.verify(pk, cbor.encode(["Signature1", pb, _EMPTY, payload]), sig)


def check_sign1(parts, anchors, content_type):
    """Steps 2-4 of §3; returns (payload, code)."""
    pk, code = check_header(parts, anchors, content_type)
    if code:
        return None, code
    if not signature_ok(parts, pk):
        return None, errors.BAD_SIGNATURE
    return parts[2], errors.OK


def verify_signed(data, anchors, content_type, max_size):
    """Parse and verify a signed object; returns (payload_bytes, code)."""
    parts, code = parse_sign1(data, max_size)
    if code:
        return None, code
    return check_sign1(parts, anchors, content_type)


def recipient_kid(cnf):
    """The lock key ID a wrapped key names, or None when the structure is wrong."""
    enc = cnf.get(2)
    if type(enc) is not list or len(enc) != 4:
        return None
    recips = enc[3]
    if type(recips) is not list or len(recips) != 1:
        return None
    r = recips[0]
    if type(r) is not list or len(r) != 3 or type(r[1]) is not dict:
        return None
    kid = r[1].get(4)
    return kid if type(kid) is bytes else None


def unwrap(cnf, lock_kid, kex_private):
    """Recover the 32-byte per-key secret K from the ``cnf`` claim (protocol §4).

    Returns (K, code) with code WRONG_RECIPIENT or BAD_KEY_WRAP on failure.
    """
    kid = recipient_kid(cnf)
    if kid is None:
        return None, errors.BAD_KEY_WRAP
    if kid != lock_kid:
        return None, errors.WRONG_RECIPIENT
    cpb, cunprot, ct, recips = cnf[2]
    rpb, runprot, rct = recips[0]
    if type(cpb) is not bytes or type(cunprot) is not dict or type(ct) is not bytes:
        return None, errors.BAD_KEY_WRAP
    if type(rpb) is not bytes or type(rct) is not bytes or rct:
        return None, errors.BAD_KEY_WRAP
    cprot, code = cbor.decode(cpb)
    if code or type(cprot) is not dict or not _is(cprot.get(1), ALG_CCM_16_128_128):
        return None, errors.BAD_KEY_WRAP
    rprot, code = cbor.decode(rpb)
    if code or type(rprot) is not dict or not _is(rprot.get(1), ALG_ECDH_ES_HKDF_256):
        return None, errors.BAD_KEY_WRAP
    iv = cunprot.get(5)
    eph = runprot.get(-1)
    if type(iv) is not bytes or len(iv) != 13 or type(eph) is not dict:
        return None, errors.BAD_KEY_WRAP
    x = eph.get(-2)
    if not _is(eph.get(1), 1) or not _is(eph.get(-1), 4) or type(x) is not bytes \
            or len(x) != 32:
        return None, errors.BAD_KEY_WRAP
    z = x25519.x25519(kex_private, x)
    if z == bytes(32):
        return None, errors.BAD_KEY_WRAP
    info = cbor.encode([ALG_CCM_16_128_128, [None, None, None], [None, None, None],
                        [128, rpb]])
    cek = hkdf.hkdf_sha256(z, _EMPTY, info, 16)
    aad = cbor.encode(["Encrypt", cpb, _EMPTY])
    pt = aesccm.decrypt(cek, iv, ct, aad, 16)
    if pt is None:
        return None, errors.BAD_KEY_WRAP
    key, code = cbor.decode(pt)
    if code or type(key) is not dict or not _is(key.get(1), 4):
        return None, errors.BAD_KEY_WRAP
    k = key.get(-1)
    if type(k) is not bytes or len(k) != 32:
        return None, errors.BAD_KEY_WRAP
    return k, errors.OK
