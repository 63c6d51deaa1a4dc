"""The offline decision function for a digital key (protocol §3, steps 1-8, and 10's unwrap).

``check`` applies the checks in the normative order and stops at the first failure;
the golden vectors (tests/vectors/credentials.json) fix its outcomes. Steps 9 (permission)
and 10's proof belong to the command handler (lock.py).
"""

from micropython import const

from kagiya_lock import cbor, cose, errors

MAX_CREDENTIAL = const(640)
CT_CWT = const(61)
MAX_LIFETIME = const(400 * 86400)

# claim keys (RFC 8392 and the Kagiya private claims)
ISS = const(1)
SUB = const(2)
AUD = const(3)
EXP = const(4)
NBF = const(5)
IAT = const(6)
CTI = const(7)
CNF = const(8)
PERM = const(-65537)
RV = const(-65538)

_UINT_CLAIMS = (EXP, NBF, IAT, PERM, RV)


def _uint(v):
    return type(v) is int and v >= 0


def claims_ok(c):
    """Step 5: every required claim present with the right type."""
    if type(c) is not dict:
        return False
    for k in _UINT_CLAIMS:
        if not _uint(c.get(k)):
            return False
    for k in (ISS, SUB, AUD):
        if type(c.get(k)) is not str:
            return False
    cti = c.get(CTI)
    if type(cti) is not bytes or len(cti) != 16:
        return False
    cnf = c.get(CNF)
    return type(cnf) is dict and 2 in cnf


def check(cred, anchors, lock_id, now, revoked):
    """Steps 1-8 of §3 for the credential bytes ``cred``; returns (code, claims).

    ``anchors``: dict issuer kid -> Ed25519 public key; ``revoked``: container of
    revoked key IDs. ``claims`` is the decoded claims map when code is OK.
    """
    if len(cred) > MAX_CREDENTIAL:
        return errors.TOO_LARGE, None
    payload, code = cose.verify_signed(cred, anchors, CT_CWT, MAX_CREDENTIAL)
    if code:
        return code, None
    c, code = cbor.decode(payload)
    if code or not claims_ok(c):
        return errors.MALFORMED, None
    nbf = c[NBF]
    exp = c[EXP]
    if nbf >= exp or exp - nbf > MAX_LIFETIME:
        return errors.INVALID_CLAIMS, None
    if c[AUD] != lock_id:
        return errors.WRONG_LOCK, None
    if now < nbf:
        return errors.NOT_YET_VALID, None
    if now >= exp:
        return errors.EXPIRED, None
    if c[CTI] in revoked:
        return errors.REVOKED, None
    return errors.OK, c
