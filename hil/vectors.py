"""Deterministic generator of the golden vectors (docs/protocol.md §14).

Bench/test side (``kagiya.hil``), not part of the SDK: it uses the SDK as any user would.

``python -m kagiya.hil.vectors OUTDIR`` writes credentials.json, sessions.json,
messages.json, framing.json and signed.json. All keys, nonces, IVs, ephemeral keys and key
IDs come from :class:`~kagiya.hil.drbg.DeterministicRng` with fixed labels and all times
are fixed, so the output is byte-identical on every run. Each expected outcome is computed
by the host library *and* asserted against the outcome the generator intends, so the
generator refuses to write a vector the library disagrees with.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kagiya.sdk import cbor, cose, credential, framing, messages, proof, signed
from kagiya.sdk.credential import Permission, issue_credential, sign_claims
from kagiya.sdk.errors import ErrorCode, ProtocolError
from kagiya.sdk.keys import IssuerKey, LockIdentity
from kagiya.sdk.keywrap import wrap_plaintext, wrap_secret

from .drbg import DeterministicRng

LOCK_ID = "KGY-0001"
OTHER_LOCK_ID = "KGY-0002"
NOW = 1767225600  # 2026-01-01T00:00:00Z
NBF = NOW - 3600
EXP = NOW + 7 * 86400
ISS = "kagiya.example"
SUB = "user-0001"
OPERATOR = "op_vectors"  #: the operator the vectors' lock is provisioned for


def _rng(label: str) -> DeterministicRng:
    return DeterministicRng("kagiya-vectors-v1/" + label)


ISSUER = IssuerKey.generate(_rng("issuer"))
OTHER_ISSUER = IssuerKey.generate(_rng("other-issuer"))
LOCK = LockIdentity.generate(_rng("lock"))
OTHER_LOCK = LockIdentity.generate(_rng("other-lock"))


def _outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except ProtocolError as e:
        return e.code.name, None


def _raw_map(pairs: list[tuple[Any, Any]]) -> bytes:
    """A CBOR map with the pairs in the given order (possibly non-deterministic)."""
    out = bytearray()
    cbor._head(out, 5, len(pairs))
    for k, v in pairs:
        out += cbor.dumps(k) + cbor.dumps(v)
    return bytes(out)


def _tagged(parts: list[Any]) -> bytes:
    return cbor.dumps(cbor.Tag(18, parts))


# --------------------------------------------------------------------------- credentials


class _CredentialVectors:
    def __init__(self) -> None:
        self.out: list[dict[str, Any]] = []

    def issue(self, name: str, **over: Any) -> credential.IssuedKey:
        args: dict[str, Any] = {
            "iss": ISS, "sub": SUB, "aud": LOCK_ID, "nbf": NBF, "exp": EXP, "iat": NBF,
            "permissions": Permission.DOORS | Permission.DRIVE, "request_version": 1,
            "lock_kex_public": LOCK.kex_public, "operator": OPERATOR}
        args.update(over)
        return issue_credential(ISSUER, rng=_rng("credentials/" + name), **args)

    def claims(self, name: str, **over: Any) -> dict[Any, Any]:
        """A claims map (valid unless overridden), cnf wrapped to LOCK."""
        r = _rng("claims/" + name)
        cti, secret = r(16), r(32)
        c = {credential.ISS: ISS, credential.SUB: SUB, credential.AUD: LOCK_ID,
             credential.EXP: EXP, credential.NBF: NBF, credential.IAT: NBF,
             credential.CTI: cti, credential.CNF: wrap_secret(secret, LOCK.kex_public, rng=r),
             credential.KGY_PERM: 3, credential.KGY_RV: 1, credential.KGY_OP: OPERATOR,
             credential.KGY_GEN: 0}
        for k, v in over.items():
            key = getattr(credential, k.upper())
            if v is None:
                c.pop(key)
            else:
                c[key] = v
        return c

    def add(self, name: str, cred: bytes, want: str, description: str, *,
            now: int = NOW, lock_id: str = LOCK_ID, revoked: list[bytes] | None = None,
            issuer: IssuerKey = ISSUER, unwrap: bool = True,
            secret: bytes | None = None) -> None:
        got, verified = _outcome(lambda: credential.verify_credential(
            cred, issuer.anchors(), lock_id, now, operator=OPERATOR, revoked=revoked or (),
            lock_kex_private=LOCK.kex_private_bytes if unwrap else None))
        if got != want:
            raise AssertionError(f"credential vector {name}: library says {got}, want {want}")
        v: dict[str, Any] = {"name": name, "description": description,
                             "issuer_public_key": issuer.public_bytes().hex(),
                             "credential": cred.hex(), "lock_id": lock_id,
                             "operator": OPERATOR, "now": now}
        if revoked is not None:
            v["revoked"] = [c.hex() for c in revoked]
        if unwrap:
            v["lock_private_key"] = LOCK.kex_private_bytes.hex()
        v["expect"] = want
        if verified is not None:
            c = verified.claims
            v["cti"] = c.cti.hex()
            v["permissions"] = int(c.permissions)
            v["claims"] = {"iss": c.iss, "sub": c.sub, "aud": c.aud, "nbf": c.nbf,
                           "exp": c.exp, "iat": c.iat, "request_version": c.request_version}
            if verified.secret is not None:
                if secret is not None and verified.secret != secret:
                    raise AssertionError(f"credential vector {name}: secret mismatch")
                v["secret"] = verified.secret.hex()
        self.out.append(v)

    def build(self) -> list[dict[str, Any]]:
        base = self.issue("base")
        cred = base.credential
        parts = cose.parse_sign1(cred, 640)
        add = self.add
        add("ok_doors_drive", cred, "ok", "valid key, doors+drive", secret=base.secret)
        k = self.issue("all", permissions=7)
        add("ok_all_permissions", k.credential, "ok", "doors+drive+log", secret=k.secret)
        k = self.issue("none", permissions=0)
        add("ok_no_permissions", k.credential, "ok", "status-only key", secret=k.secret)
        add("ok_at_nbf", cred, "ok", "now == nbf is valid", now=NBF)
        add("ok_before_exp", cred, "ok", "now == exp - 1 is valid", now=EXP - 1)
        add("expired_at_exp", cred, "EXPIRED", "now == exp is expired", now=EXP)
        add("expired", cred, "EXPIRED", "now long after exp", now=EXP + 86400)
        add("not_yet_valid", cred, "NOT_YET_VALID", "now == nbf - 1", now=NBF - 1)
        add("wrong_lock", cred, "WRONG_LOCK", "aud is another lock", lock_id=OTHER_LOCK_ID)
        add("revoked", cred, "REVOKED", "cti is in the revocation list",
            revoked=[base.cti])
        add("ok_other_revoked", cred, "ok", "another cti is revoked",
            revoked=[bytes(16)])
        add("order_wrong_lock_before_expired", cred, "WRONG_LOCK",
            "audience is checked before the window", lock_id=OTHER_LOCK_ID, now=EXP)
        add("order_expired_before_revoked", cred, "EXPIRED",
            "the window is checked before revocation", now=EXP, revoked=[base.cti])
        k = self.issue("other_operator", operator="op_other")
        add("wrong_operator", k.credential, "WRONG_OPERATOR",
            "kgy_op names another operator than the lock's")
        add("order_wrong_lock_before_operator", k.credential, "WRONG_LOCK",
            "the audience is checked before the operator", lock_id=OTHER_LOCK_ID)
        add("order_operator_before_expired", k.credential, "WRONG_OPERATOR",
            "the operator is checked before the window", now=EXP)
        k = self.issue("lifetime400", nbf=NOW - 86400, exp=NOW - 86400 + 400 * 86400)
        add("ok_lifetime_400_days", k.credential, "ok", "exp - nbf == 400 days (the maximum)")

        # signature (step 4)
        sig = bytearray(parts.signature)
        sig[0] ^= 1
        add("bad_signature_r", _tagged([parts.protected_bytes, {}, parts.payload, bytes(sig)]),
            "BAD_SIGNATURE", "one bit of R flipped")
        sig = bytearray(parts.signature)
        sig[40] ^= 1
        add("bad_signature_s", _tagged([parts.protected_bytes, {}, parts.payload, bytes(sig)]),
            "BAD_SIGNATURE", "one bit of S flipped")
        s_plus_l = int.from_bytes(parts.signature[32:], "little") + cose.L25519
        add("bad_signature_s_plus_l",
            _tagged([parts.protected_bytes, {}, parts.payload,
                     parts.signature[:32] + s_plus_l.to_bytes(32, "little")]),
            "BAD_SIGNATURE", "non-canonical S (S + L): must be refused (RFC 8032 §5.1.7)")
        add("bad_signature_63_bytes",
            _tagged([parts.protected_bytes, {}, parts.payload, parts.signature[:63]]),
            "BAD_SIGNATURE", "signature of 63 bytes")
        payload = bytearray(parts.payload)
        idx = payload.find(LOCK_ID.encode())
        payload[idx + len(LOCK_ID) - 1] ^= 3  # KGY-0001 -> KGY-0002
        add("bad_signature_payload_changed",
            _tagged([parts.protected_bytes, {}, bytes(payload), parts.signature]),
            "BAD_SIGNATURE", "aud changed after signing: the audience matches, the "
            "signature does not", lock_id=OTHER_LOCK_ID)
        add("order_expired_before_signature",
            _tagged([parts.protected_bytes, {}, parts.payload, bytes(sig)]), "EXPIRED",
            "v2: the window is checked before the signature (a stale key costs no "
            "verify)", now=EXP)
        add("order_wrong_lock_before_signature",
            _tagged([parts.protected_bytes, {}, parts.payload, bytes(sig)]), "WRONG_LOCK",
            "v2: the audience is checked before the signature", lock_id=OTHER_LOCK_ID)
        forged = cose.sign1(OTHER_ISSUER, {1: -8, 3: 61, 4: ISSUER.kid}, parts.payload)
        add("bad_signature_other_key_same_kid", forged, "BAD_SIGNATURE",
            "kid names the anchor but another key signed")
        add("unknown_issuer", cose.sign1(OTHER_ISSUER, {1: -8, 3: 61, 4: OTHER_ISSUER.kid},
                                         parts.payload),
            "UNKNOWN_ISSUER", "kid of a key that is not a trust anchor")
        add("unknown_issuer_no_kid", cose.sign1(ISSUER, {1: -8, 3: 61}, parts.payload),
            "UNKNOWN_ISSUER", "protected header without kid")
        add("unknown_issuer_text_kid",
            cose.sign1(ISSUER, {1: -8, 3: 61, 4: ISSUER.kid.hex()}, parts.payload),
            "UNKNOWN_ISSUER", "kid is text, not bytes")

        # algorithm and content type (step 2)
        add("wrong_algorithm_es256", cose.sign1(ISSUER, {1: -7, 3: 61, 4: ISSUER.kid},
                                                parts.payload),
            "WRONG_ALGORITHM", "alg ES256 (-7)")
        add("wrong_algorithm_missing", cose.sign1(ISSUER, {3: 61, 4: ISSUER.kid},
                                                  parts.payload),
            "WRONG_ALGORITHM", "no alg")
        add("wrong_algorithm_text", cose.sign1(ISSUER, {1: "EdDSA", 3: 61, 4: ISSUER.kid},
                                               parts.payload),
            "WRONG_ALGORITHM", "alg as text")
        add("order_wrong_algorithm_before_issuer",
            cose.sign1(OTHER_ISSUER, {1: -7, 3: 61, 4: OTHER_ISSUER.kid}, parts.payload),
            "WRONG_ALGORITHM", "algorithm is checked before the kid")
        add("wrong_content_type", cose.sign1(ISSUER, {1: -8, 3: 16, 4: ISSUER.kid},
                                             parts.payload),
            "WRONG_CONTENT_TYPE", "content type 16 instead of 61")
        add("wrong_content_type_missing", cose.sign1(ISSUER, {1: -8, 4: ISSUER.kid},
                                                     parts.payload),
            "WRONG_CONTENT_TYPE", "no content type")
        add("wrong_content_type_time_statement", signed.sign_time_statement(ISSUER, NOW),
            "WRONG_CONTENT_TYPE", "a time statement presented as a key")
        add("order_content_type_before_issuer",
            cose.sign1(OTHER_ISSUER, {1: -8, 3: 16, 4: OTHER_ISSUER.kid}, parts.payload),
            "WRONG_CONTENT_TYPE", "content type is checked before the kid")

        # structure (step 1)
        untagged = cbor.dumps([parts.protected_bytes, {}, parts.payload, parts.signature])
        add("malformed_untagged", untagged, "MALFORMED", "COSE_Sign1 without tag 18")
        add("malformed_tag_17", b"\xd1" + cred[1:], "MALFORMED", "tag 17 (COSE_Mac0)")
        add("malformed_tag_61_cwt", b"\xd8\x3d" + cred, "MALFORMED",
            "wrapped in the CWT tag 61 (not allowed)")
        add("malformed_tag_98", b"\xd8\x62" + cred[1:], "MALFORMED", "tag 98 (COSE_Sign)")
        add("malformed_truncated_1", cred[:-1], "MALFORMED", "last byte missing")
        add("malformed_truncated_half", cred[: len(cred) // 2], "MALFORMED", "half")
        add("malformed_empty", b"", "MALFORMED", "zero bytes")
        add("malformed_trailing_byte", cred + b"\x00", "MALFORMED", "one trailing byte")
        add("malformed_indefinite_array",
            b"\xd2\x9f" + cred[2:] + b"\xff", "MALFORMED", "indefinite-length outer array")
        long_sig = b"\x59\x00\x40" + parts.signature
        add("malformed_non_shortest_length", cred[: -len(parts.signature) - 2] + long_sig,
            "MALFORMED", "signature length encoded in 2 bytes (non-deterministic CBOR)")
        add("malformed_three_elements",
            _tagged([parts.protected_bytes, {}, parts.payload]), "MALFORMED",
            "COSE_Sign1 with 3 elements")
        add("malformed_unprotected_not_map",
            _tagged([parts.protected_bytes, [], parts.payload, parts.signature]),
            "MALFORMED", "unprotected header is an array")
        add("malformed_payload_nil",
            _tagged([parts.protected_bytes, {}, None, parts.signature]),
            "MALFORMED", "detached payload (nil)")
        add("malformed_protected_not_map",
            cose.sign1(ISSUER, cbor.dumps([1, -8]), parts.payload),
            "MALFORMED", "protected header holds an array")
        dup = _raw_map([(1, -8), (1, -8), (3, 61), (4, ISSUER.kid)])
        add("malformed_protected_duplicate_key", cose.sign1(ISSUER, dup, parts.payload),
            "MALFORMED", "duplicate key in the protected header")
        add("ok_protected_keys_out_of_order",
            cose.sign1(ISSUER, _raw_map([(4, ISSUER.kid), (3, 61), (1, -8)]), parts.payload),
            "ok", "protected header keys not sorted: accepted (§1 MAY), signature covers bytes")

        # size (step 1)
        def padded(total: int) -> bytes:
            n = total - len(cred)
            while True:
                c = cose.sign1(ISSUER, parts.protected_bytes, parts.payload,
                               {-65600: bytes(max(n, 0))})
                if len(c) == total:
                    return c
                n += total - len(c)

        add("ok_exactly_640_bytes", padded(640), "ok", "credential of exactly 640 bytes")
        add("too_large_641_bytes", padded(641), "TOO_LARGE", "credential of 641 bytes")
        add("too_large_2000_bytes", padded(2000), "TOO_LARGE", "credential of 2000 bytes")

        # claims (step 5) and constraints
        def with_claims(name: str, **over: Any) -> bytes:
            return sign_claims(ISSUER, self.claims(name, **over))

        add("malformed_claims_missing_cti", with_claims("nocti", cti=None), "MALFORMED",
            "no cti")
        add("malformed_claims_cti_15_bytes", with_claims("cti15", cti=bytes(15)),
            "MALFORMED", "cti of 15 bytes")
        add("malformed_claims_cti_text", with_claims("ctitext", cti="0" * 16), "MALFORMED",
            "cti as text")
        add("malformed_claims_missing_exp", with_claims("noexp", exp=None), "MALFORMED",
            "no exp")
        add("malformed_claims_negative_nbf", with_claims("negnbf", nbf=-1), "MALFORMED",
            "nbf negative")
        add("malformed_claims_aud_int", with_claims("audint", aud=1), "MALFORMED",
            "aud is an integer")
        add("malformed_claims_missing_perm", with_claims("noperm", kgy_perm=None),
            "MALFORMED", "no kgy_perm")
        add("malformed_claims_missing_operator", with_claims("noop", kgy_op=None), "MALFORMED",
            "no kgy_op claim")
        add("malformed_claims_generation_text", with_claims("gentext", kgy_gen="0"),
            "MALFORMED", "kgy_gen is text")
        add("malformed_claims_missing_cnf", with_claims("nocnf", cnf=None), "MALFORMED",
            "no cnf")
        add("malformed_claims_cnf_without_2", with_claims("cnf1", cnf={1: {1: 4}}),
            "MALFORMED", "cnf without an Encrypted_COSE_Key (key 2)")
        add("malformed_claims_sub_65_bytes", with_claims("sub65", sub="u" * 65),
            "MALFORMED", "text string over 64 bytes in the claims")
        add("malformed_claims_not_map", sign_claims(ISSUER, cbor.dumps([1, 2, 3])),
            "MALFORMED", "payload is an array")
        add("malformed_claims_tagged", sign_claims(ISSUER, b"\xd2" + cbor.dumps({})),
            "MALFORMED", "payload is tagged")
        good = cbor.dumps(self.claims("nonshortest"))
        iat = NBF.to_bytes(4, "big")
        assert good.count(b"\x06\x1a" + iat) == 1
        add("malformed_claims_non_shortest_int",
            sign_claims(ISSUER, good.replace(b"\x06\x1a" + iat, b"\x06\x1b\0\0\0\0" + iat)),
            "MALFORMED", "iat as an 8-byte integer (non-deterministic CBOR), validly signed")
        add("malformed_claims_float",
            sign_claims(ISSUER, good.replace(b"\x06\x1a" + iat, b"\x06\xfb" + bytes(8))),
            "MALFORMED", "iat is a float")
        add("malformed_claims_trailing", sign_claims(ISSUER, good + b"\x00"), "MALFORMED",
            "trailing byte after the claims map")
        reordered = self.claims("reordered")
        add("ok_claims_keys_out_of_order",
            sign_claims(ISSUER, _raw_map(list(reversed(list(reordered.items()))))), "ok",
            "claims keys in reverse order: accepted (§1 MAY)")
        add("invalid_claims_nbf_equals_exp", with_claims("nbfexp", nbf=EXP),
            "INVALID_CLAIMS", "nbf == exp", now=EXP - 1)
        add("invalid_claims_nbf_after_exp", with_claims("nbfafter", nbf=EXP + 10),
            "INVALID_CLAIMS", "nbf > exp")
        add("invalid_claims_lifetime_too_long",
            with_claims("long", nbf=NOW - 86400, exp=NOW - 86400 + 400 * 86400 + 1),
            "INVALID_CLAIMS", "exp - nbf == 400 days + 1 s")
        add("order_invalid_claims_before_wrong_lock", with_claims("nbfexp2", nbf=EXP),
            "INVALID_CLAIMS", "claim constraints are checked before the audience",
            lock_id=OTHER_LOCK_ID)

        # key unwrap (step 10)
        k = self.issue("otherlock", lock_kex_public=OTHER_LOCK.kex_public)
        add("wrong_recipient", k.credential, "WRONG_RECIPIENT",
            "secret wrapped to another lock's key")
        add("ok_wrong_recipient_without_unwrap", k.credential, "ok",
            "same key, verified without unwrap (steps 1-8 only)", unwrap=False)

        def with_cnf(name: str, mutate: Callable[[list[Any]], None]) -> bytes:
            c = self.claims(name)
            enc = c[credential.CNF][2]
            mutate(enc)
            return sign_claims(ISSUER, c)

        def flip_tag(enc: list[Any]) -> None:
            ct = bytearray(enc[2])
            ct[-1] ^= 1
            enc[2] = bytes(ct)

        add("bad_key_wrap_tag_flip", with_cnf("tagflip", flip_tag), "BAD_KEY_WRAP",
            "last byte of the AES-CCM tag flipped, validly signed")

        def flip_iv(enc: list[Any]) -> None:
            enc[1] = {5: bytes(13)}

        add("bad_key_wrap_wrong_iv", with_cnf("ivflip", flip_iv), "BAD_KEY_WRAP",
            "IV replaced")

        def short_iv(enc: list[Any]) -> None:
            enc[1] = {5: enc[1][5][:12]}

        add("bad_key_wrap_iv_12_bytes", with_cnf("iv12", short_iv), "BAD_KEY_WRAP",
            "12-byte IV")

        def zero_eph(enc: list[Any]) -> None:
            enc[3][0][1][-1][-2] = bytes(32)

        add("bad_key_wrap_low_order_ephemeral", with_cnf("zeroeph", zero_eph),
            "BAD_KEY_WRAP", "ephemeral X25519 key 0 (all-zero shared secret)")

        def other_alg(enc: list[Any]) -> None:
            enc[0] = cbor.dumps({1: 1})  # A128GCM

        add("bad_key_wrap_content_alg", with_cnf("gcm", other_alg), "BAD_KEY_WRAP",
            "content algorithm A128GCM (1)")

        def two_recipients(enc: list[Any]) -> None:
            enc[3] = [enc[3][0], enc[3][0]]

        add("bad_key_wrap_two_recipients", with_cnf("two", two_recipients), "BAD_KEY_WRAP",
            "two recipients")
        r = _rng("claims/short-secret")
        c = self.claims("short-secret")
        c[credential.CNF] = wrap_plaintext(cbor.dumps({1: 4, -1: r(16)}), LOCK.kex_public,
                                           rng=r)
        add("bad_key_wrap_secret_16_bytes", sign_claims(ISSUER, c), "BAD_KEY_WRAP",
            "wrapped COSE_Key holds a 16-byte k")
        c = self.claims("kty-okp")
        c[credential.CNF] = wrap_plaintext(cbor.dumps({1: 1, -1: r(32)}), LOCK.kex_public,
                                           rng=r)
        add("bad_key_wrap_kty_okp", sign_claims(ISSUER, c), "BAD_KEY_WRAP",
            "wrapped COSE_Key has kty 1")
        return self.out


# --------------------------------------------------------------------------- sessions


def _sessions() -> list[dict[str, Any]]:
    r = _rng("sessions")
    secret, nonce, cti = r(32), r(16), r(16)
    out: list[dict[str, Any]] = []

    def inputs(**kw: Any) -> dict[str, Any]:
        base: dict[str, Any] = {"secret": secret.hex(), "nonce": nonce.hex(),
                                "lock_id": LOCK_ID, "cti": cti.hex()}
        base.update(kw)
        return base

    for cmd in messages.Command:
        for counter, arg in ((1, 0), (0xFFFFFFFF, 0)) if cmd != 16 else ((7, 1), (8, 300)):
            i = inputs(command=int(cmd), counter=counter, arg=arg)
            p = proof.command_proof(secret, nonce, LOCK_ID, cti, cmd, counter, arg)
            out.append({"name": f"proof_{cmd.name.lower()}_{counter}_{arg}", "inputs": i,
                        "proof": p.hex(), "expect": "ok"})
    good = proof.command_proof(secret, nonce, LOCK_ID, cti, 1, 2, 0)
    for name, wrong in (("bad_proof_other_nonce", proof.command_proof(
                            secret, bytes(16), LOCK_ID, cti, 1, 2, 0)),
                        ("bad_proof_other_lock", proof.command_proof(
                            secret, nonce, OTHER_LOCK_ID, cti, 1, 2, 0)),
                        ("bad_proof_other_command", proof.command_proof(
                            secret, nonce, LOCK_ID, cti, 3, 2, 0)),
                        ("bad_proof_bit_flip", bytes([good[0] ^ 1]) + good[1:]),
                        ("bad_proof_other_secret", proof.command_proof(
                            bytes(32), nonce, LOCK_ID, cti, 1, 2, 0))):
        assert not proof.verify_command_proof(secret, nonce, LOCK_ID, cti, 1, 2, 0, wrong)
        out.append({"name": name, "inputs": inputs(command=1, counter=2, arg=0),
                    "proof": wrong.hex(), "expect": "BAD_PROOF"})
    # v2 reply MACs cover the whole reply without key 15 (``body``): a real RESULT / LOG
    rec = cbor.dumps([1, NOW, 32, 0, None, None])
    replies: list[tuple[str, messages.Result | messages.LogReply]] = [
        ("mac_unlock_ok", messages.Result(1, 1, 0, 0b1010, NOW, 3, r(16), bytes(32))),
        ("mac_drive_disable_moving", messages.Result(
            2, 4, int(ErrorCode.VEHICLE_MOVING), 0b0110, NOW, 3, r(16), bytes(32))),
        ("mac_status_permission_denied", messages.Result(
            9, 3, int(ErrorCode.PERMISSION_DENIED), 1, NOW, 0, r(16), bytes(32))),
        ("mac_drive_presence_required", messages.Result(
            4, 3, int(ErrorCode.PRESENCE_REQUIRED), 0b101001, NOW, 7, r(16), bytes(32))),
        ("mac_log_body", messages.LogReply(5, (rec,), r(32), 1, r(32), 0, r(64), False,
                                           bytes(32), 0b1001, NOW, 3, r(16)))]
    for name, reply in replies:
        command = reply.command if isinstance(reply, messages.Result) else 16
        code = reply.code if isinstance(reply, messages.Result) else 0
        body = messages.mac_body(reply)
        i = inputs(command=command, counter=reply.counter, code=code, body=body.hex())
        m = proof.reply_mac(secret, nonce, LOCK_ID, cti, command, reply.counter, code, body)
        out.append({"name": name, "inputs": i, "mac": m.hex(), "expect": "ok"})
    # replay: the counter rule of §8 over a session (counter checked before the proof)
    steps: list[tuple[int, bool]] = [(1, True), (1, True), (3, True), (2, True), (3, True),
                                     (5, False), (4, True), (4, True), (0, True),
                                     (0xFFFFFFFF, True), (0xFFFFFFFF, True)]
    guard = proof.ReplayGuard()
    seq = []
    for counter, valid in steps:
        p = proof.command_proof(secret if valid else bytes(32), nonce, LOCK_ID, cti, 1,
                                counter, 0)
        try:
            guard.check(counter)
            if not proof.verify_command_proof(secret, nonce, LOCK_ID, cti, 1, counter, 0, p):
                raise ProtocolError(ErrorCode.BAD_PROOF)
            guard.accept(counter)
            got = "ok"
        except ProtocolError as e:
            got = e.code.name
        seq.append({"counter": counter, "proof": p.hex(), "expect": got})
    out.append({"name": "replay_sequence", "description":
                "one session (last = 0 after HELLO), command UNLOCK; each step's outcome. "
                "The counter is checked first (REPLAYED), then the proof (BAD_PROOF); a "
                "failed proof does not advance the counter.",
                "session": inputs(command=1, arg=0), "steps": seq})
    return out


# --------------------------------------------------------------------------- messages


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    return v


def _messages() -> list[dict[str, Any]]:
    r = _rng("messages")
    cti, nonce = r(16), r(16)
    cred = _CredentialVectors().issue("message").credential
    time_stmt = signed.sign_time_statement(ISSUER, NOW)
    update = signed.sign_revocation_update(
        ISSUER, signed.RevocationUpdate(LOCK_ID, 2, NOW, [(r(16), EXP)], OPERATOR))
    rec = cbor.dumps([1, NOW, 32, 0, None, None])
    samples: list[tuple[str, messages.Message]] = [
        ("hello", messages.Hello()),
        ("hello_versions", messages.Hello((1, 2, 7))),
        ("challenge", messages.Challenge(2, LOCK_ID, nonce, NOW, 0b1001, 3, 2000)),
        ("command", messages.CommandRequest(cti, 1, 1, r(32))),
        ("command_first_use", messages.CommandRequest(cti, 2, 3, r(32), cred)),
        ("result", messages.Result(1, 1, 0, 0b1000, NOW, 2, r(16), r(32))),
        ("time", messages.TimeMessage(time_stmt)),
        ("time_fresh", messages.TimeMessage(signed.sign_time_statement(
            ISSUER, NOW, lock_id=LOCK_ID, nonce=nonce))),
        ("revocation", messages.RevocationMessage(update)),
        ("ack", messages.Ack(0, NOW, 2)),
        ("log_fetch", messages.LogFetch(cti, 4, 1, r(32))),
        ("log", messages.LogReply(5, (rec,), r(32), 1, r(32), 0, r(64), False, r(32), 0b1001,
                                  NOW, 2, r(16))),
        ("info", messages.Info()),
        ("lock_info", messages.LockInfo(LOCK_ID, "1.0.0", (2,), LOCK.sign_public,
                                        LOCK.kex_public, NOW, 0b1001, 0, 12, True)),
        ("lock_info_unprovisioned", messages.LockInfo("", "1.0.0", (2,), b"", b"", 0, 0, 0,
                                                      0, False)),
        ("error", messages.ErrorReply(int(ErrorCode.STALE_CHALLENGE))),
        ("error_with_counter", messages.ErrorReply(int(ErrorCode.REPLAYED), 3)),
    ]
    out: list[dict[str, Any]] = []
    for name, msg in samples:
        data = messages.encode(msg)
        assert messages.decode(data) == msg
        out.append({"name": name, "hex": data.hex(), "type": int(msg.TYPE),
                    "fields": {k: _jsonable(v) for k, v in messages.message_fields(msg).items()},
                    "expect": "ok"})
    hello = messages.encode(messages.Hello())
    cmd = {0: 3, 1: cti, 2: 1, 3: 1, 4: bytes(32)}
    bad: list[tuple[str, bytes, str]] = [
        ("empty", b"", "MALFORMED"),
        ("not_a_map", cbor.dumps([0, 1]), "MALFORMED"),
        ("no_type", cbor.dumps({1: [1]}), "MALFORMED"),
        ("type_text", cbor.dumps({0: "hello"}), "MALFORMED"),
        ("unknown_type_14", cbor.dumps({0: 14}), "UNKNOWN_MESSAGE"),
        ("unknown_type_negative", cbor.dumps({0: -1}), "UNKNOWN_MESSAGE"),
        ("hello_missing_versions", cbor.dumps({0: 1}), "MALFORMED"),
        ("hello_versions_not_list", cbor.dumps({0: 1, 1: 1}), "MALFORMED"),
        ("truncated", hello[:-1], "MALFORMED"),
        ("trailing", hello + b"\x00", "MALFORMED"),
        ("non_shortest_type", b"\xa2\x00\x18\x01\x01\x81\x01", "MALFORMED"),
        ("indefinite_map", b"\xbf\x00\x01\x01\x81\x01\xff", "MALFORMED"),
        ("duplicate_key", b"\xa3\x00\x01\x01\x81\x01\x01\x81\x01", "MALFORMED"),
        ("float_value", b"\xa2\x00\x01\x01\xf9\x3c\x00", "MALFORMED"),
        ("undefined_value", b"\xa2\x00\x01\x01\xf7", "MALFORMED"),
        ("tagged_message", b"\xd2" + hello, "MALFORMED"),
        ("tag_1_inside", b"\xa2\x00\x01\x01\xc1\x01", "MALFORMED"),
        ("invalid_utf8", b"\xa2\x00\x0b\x01\x62\xc3\x28", "MALFORMED"),
        ("bytes_map_key", b"\xa2\x00\x01\x41\x01\x81\x01", "MALFORMED"),
        ("deep_nesting", b"\xa2\x00\x01\x01" + b"\x81" * 8 + b"\x01", "MALFORMED"),
        ("too_many_items", b"\xa2\x00\x01\x01\x98\x41" + b"\x01" * 65, "TOO_LARGE"),
        ("text_65_bytes", cbor.dumps({0: 10, 1: "x" * 65}), "TOO_LARGE"),
        ("over_2048_bytes", cbor.dumps({0: 5, 1: bytes(2100)}), "TOO_LARGE"),
        ("command_cti_15", cbor.dumps({**cmd, 1: bytes(15)}), "MALFORMED"),
        ("command_proof_31", cbor.dumps({**cmd, 4: bytes(31)}), "MALFORMED"),
        ("command_counter_2_32", cbor.dumps({**cmd, 2: 1 << 32}), "MALFORMED"),
        ("command_counter_negative", cbor.dumps({**cmd, 2: -1}), "MALFORMED"),
        ("command_unknown_command_6", cbor.dumps({**cmd, 3: 6}), "UNKNOWN_MESSAGE"),
        ("command_log_fetch_as_command", cbor.dumps({**cmd, 3: 16}), "UNKNOWN_MESSAGE"),
        ("command_credential_text", cbor.dumps({**cmd, 5: "cred"}), "MALFORMED"),
        ("challenge_bad_lock_id", cbor.dumps({0: 2, 1: 1, 2: "kgy-0001", 3: nonce, 4: NOW,
                                              5: 0, 6: 0}), "MALFORMED"),
        ("result_mac_missing", cbor.dumps({0: 4, 1: 1, 2: 1, 3: 0, 4: 0, 5: NOW}),
         "MALFORMED"),
        ("log_more_not_bool", cbor.dumps({0: 9, 1: 1, 2: [], 3: bytes(32), 4: 0,
                                          5: bytes(32), 6: 0, 7: bytes(64), 8: 0,
                                          15: bytes(32)}), "MALFORMED"),
        ("error_code_text", cbor.dumps({0: 15, 1: "MALFORMED"}), "MALFORMED"),
    ]
    ok_extra = cbor.dumps({0: 1, 1: [1], 99: "future"})
    assert messages.decode(ok_extra) == messages.Hello((1,))
    out.append({"name": "hello_unknown_key_ignored", "hex": ok_extra.hex(), "type": 1,
                "fields": {"versions": [1]}, "expect": "ok"})
    nest8 = b"\xa2\x00\x0a\x01" + b"\x81" * 7 + b"\x01"
    assert isinstance(messages.decode(nest8), messages.Info)
    out.append({"name": "info_nesting_depth_8_ok", "hex": nest8.hex(), "type": 10,
                "fields": {}, "expect": "ok",
                "description": "an ignored key holding 7 nested arrays: depth 8 with the map"})
    for name, data, want in bad:
        got, _ = _outcome(lambda d=data: messages.decode(d))  # type: ignore[misc]
        if got != want:
            raise AssertionError(f"message vector {name}: library says {got}, want {want}")
        out.append({"name": name, "hex": data.hex(), "expect": want})
    return out


# --------------------------------------------------------------------------- framing


def _framing() -> list[dict[str, Any]]:
    r = _rng("framing")
    cred = _CredentialVectors().issue("framing").credential
    msgs = [("hello", messages.encode(messages.Hello())),
            ("17_bytes", r(17)), ("18_bytes", r(18)), ("182_bytes", r(182)),
            ("command_first_use", messages.encode(messages.CommandRequest(
                r(16), 1, 1, r(32), cred))),
            ("511_bytes", r(511)), ("2048_bytes", r(2048))]
    out: list[dict[str, Any]] = []
    for mtu in (23, 185, 517):
        for name, m in msgs:
            frs = framing.fragment(m, mtu)
            re = framing.Reassembler()
            done = [re.feed(f) for f in frs]
            assert done[-1] == m and all(d is None for d in done[:-1])
            out.append({"name": f"mtu{mtu}_{name}", "mtu": mtu, "message": m.hex(),
                        "fragments": [f.hex() for f in frs]})
    m = r(40)
    f23 = framing.fragment(m, 23)  # 3 fragments: 17 + 19 + 4
    bad: list[tuple[str, list[bytes], str]] = [
        ("continuation_without_first", [f23[1]], "FRAMING"),
        ("skipped_index", [f23[0], f23[2]], "FRAMING"),
        ("repeated_index", [f23[0], f23[1], f23[1]], "FRAMING"),
        ("index_zero", [f23[0], b"\x00" + f23[1][1:]], "FRAMING"),
        ("header_0x81", [b"\x81\x00\x01\x00"], "FRAMING"),
        ("header_0xff", [b"\xff\x01"], "FRAMING"),
        ("empty_fragment", [b""], "FRAMING"),
        ("first_too_short", [b"\x80\x00"], "FRAMING"),
        ("total_zero", [b"\x80\x00\x00"], "FRAMING"),
        ("total_2049", [b"\x80\x08\x01" + bytes(17)], "TOO_LARGE"),
        ("total_65535", [b"\x80\xff\xff" + bytes(17)], "TOO_LARGE"),
        ("first_longer_than_total", [b"\x80\x00\x02\x01\x02\x03"], "FRAMING"),
        ("continuation_past_total", [f23[0], f23[1], f23[2] + b"\x00"], "FRAMING"),
        ("extra_fragment_after_first_completes",
         [b"\x80\x00\x02\x01\x02", b"\x01\x03"], "FRAMING"),
        ("continuation_after_error", [f23[0], f23[2], f23[1]], "FRAMING"),
    ]
    for name, frs, want in bad:
        re = framing.Reassembler()
        got = None
        for f in frs:
            try:
                re.feed(f)
            except ProtocolError as e:
                got = e.code.name
        if got != want:
            raise AssertionError(f"framing vector {name}: library says {got}, want {want}")
        out.append({"name": name, "fragments": [f.hex() for f in frs], "expect": want})
    return out


# --------------------------------------------------------------------------- signed


def _signed() -> list[dict[str, Any]]:
    r = _rng("signed")
    out: list[dict[str, Any]] = []

    def add(name: str, kind: str, data: bytes, want: str, description: str,
            **ctx: Any) -> None:
        anchors = ISSUER.anchors()
        if kind == "time":
            got, val = _outcome(lambda: signed.verify_time(data, anchors))
        else:
            got, val = _outcome(lambda: signed.verify_revocation_update(
                data, anchors, ctx.get("lock_id"), operator=OPERATOR,
                current_version=ctx.get("current_version")))
        if got != want:
            raise AssertionError(f"signed vector {name}: library says {got}, want {want}")
        v: dict[str, Any] = {"name": name, "kind": kind, "description": description,
                             "issuer_public_key": ISSUER.public_bytes().hex(),
                             "data": data.hex(), **ctx, "expect": want}
        if kind == "revocation":
            v["operator"] = OPERATOR
        if kind == "time" and got == "ok":
            v["time"] = val[0]
            if val[1] is not None:
                v["fresh"] = {"lock_id": val[1], "nonce": val[2].hex()}
        if kind == "revocation" and got == "ok":
            v["update"] = {"lock_id": val.lock_id, "version": val.version, "iat": val.iat,
                           "entries": [[c.hex(), e] for c, e in val.entries]}
        out.append(v)

    ts = signed.sign_time_statement(ISSUER, NOW)
    add("time_ok", "time", ts, "ok", "time statement at NOW")
    add("time_ok_zero", "time", signed.sign_time_statement(ISSUER, 0), "ok", "t = 0")
    add("time_bad_signature", "time", ts[:-1] + bytes([ts[-1] ^ 0x80]), "BAD_SIGNATURE",
        "last signature byte changed")
    add("time_unknown_issuer", "time", signed.sign_time_statement(OTHER_ISSUER, NOW),
        "UNKNOWN_ISSUER", "signed by a key that is not an anchor")
    cred = _CredentialVectors().issue("signed").credential
    add("time_wrong_content_type_credential", "time", cred, "WRONG_CONTENT_TYPE",
        "a digital key presented as a time statement")
    add("time_malformed_payload", "time",
        cose.sign1(ISSUER, {1: -8, 3: signed.CT_TIME, 4: ISSUER.kid}, cbor.dumps({1: NOW})),
        "MALFORMED", "payload without key 6")
    add("time_malformed_untagged", "time", ts[1:], "MALFORMED", "no tag 18")
    fresh_nonce = r(16)
    add("time_fresh_ok", "time", signed.sign_time_statement(
        ISSUER, NOW, lock_id=LOCK_ID, nonce=fresh_nonce), "ok",
        "fresh (v2): bound to a lock ID and one of its session nonces")
    add("time_fresh_short_nonce", "time", cose.sign1(
        ISSUER, {1: -8, 3: signed.CT_TIME, 4: ISSUER.kid},
        cbor.dumps({3: LOCK_ID, 6: NOW, 7: fresh_nonce[:15]})), "MALFORMED",
        "a fresh statement's nonce must be 16 bytes")
    add("time_fresh_no_lock_id", "time", cose.sign1(
        ISSUER, {1: -8, 3: signed.CT_TIME, 4: ISSUER.kid},
        cbor.dumps({6: NOW, 7: fresh_nonce})), "MALFORMED",
        "a nonce without a lock ID")
    add("time_order_payload_before_signature", "time", (lambda b: b[:-1] + bytes(
        [b[-1] ^ 1]))(cose.sign1(ISSUER, {1: -8, 3: signed.CT_TIME, 4: ISSUER.kid},
                                 cbor.dumps({1: NOW}))), "MALFORMED",
        "v2: the payload is checked before the signature (no verify for a bad payload)")
    add("time_wrong_algorithm", "time",
        cose.sign1(ISSUER, {1: -7, 3: signed.CT_TIME, 4: ISSUER.kid}, cbor.dumps({6: NOW})),
        "WRONG_ALGORITHM", "alg -7")

    entries = [(r(16), EXP), (r(16), EXP + 86400)]
    upd = signed.sign_revocation_update(ISSUER, signed.RevocationUpdate(LOCK_ID, 4, NOW,
                                                                        entries, OPERATOR))
    add("revocation_ok", "revocation", upd, "ok", "version 4 over a lock at version 3",
        lock_id=LOCK_ID, current_version=3)
    add("revocation_ok_from_zero", "revocation", upd, "ok", "a fresh lock (version 0)",
        lock_id=LOCK_ID, current_version=0)
    add("revocation_stale_equal", "revocation", upd, "STALE_UPDATE",
        "version equal to the lock's: refused, the lock keeps its list",
        lock_id=LOCK_ID, current_version=4)
    add("revocation_stale_lower", "revocation", upd, "STALE_UPDATE",
        "version lower than the lock's (rollback)", lock_id=LOCK_ID, current_version=9)
    add("revocation_wrong_lock", "revocation", upd, "WRONG_LOCK", "update for KGY-0001",
        lock_id=OTHER_LOCK_ID, current_version=0)
    add("revocation_order_wrong_lock_before_stale", "revocation", upd, "WRONG_LOCK",
        "the audience is checked before the version", lock_id=OTHER_LOCK_ID,
        current_version=9)
    add("revocation_bad_signature", "revocation", upd[:-1] + bytes([upd[-1] ^ 1]),
        "BAD_SIGNATURE", "signature changed", lock_id=LOCK_ID, current_version=0)
    add("revocation_wrong_content_type_time", "revocation", ts, "WRONG_CONTENT_TYPE",
        "a time statement presented as a revocation update", lock_id=LOCK_ID,
        current_version=0)
    add("revocation_wrong_content_type_credential", "revocation", cred,
        "WRONG_CONTENT_TYPE", "a digital key", lock_id=LOCK_ID, current_version=0)
    add("revocation_ok_empty", "revocation", signed.sign_revocation_update(
        ISSUER, signed.RevocationUpdate(LOCK_ID, 5, NOW, [], OPERATOR)), "ok",
        "empty list (all "
        "revocations expired or lifted)", lock_id=LOCK_ID, current_version=4)
    many = [(r(16), EXP) for _ in range(64)]
    add("revocation_ok_64_entries", "revocation", signed.sign_revocation_update(
        ISSUER, signed.RevocationUpdate(LOCK_ID, 6, NOW, many, OPERATOR)), "ok",
        "64 entries (max)",
        lock_id=LOCK_ID, current_version=0)
    prot = {1: -8, 3: signed.CT_REVOCATION, 4: ISSUER.kid}

    def raw_update(payload: dict[Any, Any]) -> bytes:
        return cose.sign1(ISSUER, prot, cbor.dumps(payload))

    listed: list[Any] = [[c, e] for c, e in many]
    full = {3: LOCK_ID, 6: NOW, signed.RV_VERSION: 7, signed.RV_ENTRIES: listed,
            signed.OPERATOR: OPERATOR}
    add("revocation_wrong_operator", "revocation",
        raw_update({**full, signed.OPERATOR: "op_other"}), "WRONG_OPERATOR",
        "update for another operator's lock", lock_id=LOCK_ID, current_version=0)
    add("revocation_order_wrong_lock_before_operator", "revocation",
        raw_update({**full, 3: OTHER_LOCK_ID, signed.OPERATOR: "op_other"}), "WRONG_LOCK",
        "the audience is checked before the operator", lock_id=LOCK_ID, current_version=0)
    add("revocation_missing_operator", "revocation",
        raw_update({k: v for k, v in full.items() if k != signed.OPERATOR}), "MALFORMED",
        "no operator (key -65541)", lock_id=LOCK_ID, current_version=0)
    add("revocation_65_entries", "revocation",
        raw_update({**full, signed.RV_ENTRIES: [*listed, [r(16), EXP]]}), "TOO_LARGE",
        "65 entries (§7: at most 64)", lock_id=LOCK_ID, current_version=0)
    add("revocation_version_zero", "revocation", raw_update({**full, signed.RV_VERSION: 0}),
        "MALFORMED", "version 0 (must be >= 1)", lock_id=LOCK_ID, current_version=0)
    add("revocation_entry_cti_15", "revocation",
        raw_update({**full, signed.RV_ENTRIES: [[bytes(15), EXP]]}), "MALFORMED",
        "entry with a 15-byte cti", lock_id=LOCK_ID, current_version=0)
    add("revocation_missing_lock", "revocation", raw_update({6: NOW, signed.RV_VERSION: 7,
                                                             signed.RV_ENTRIES: [],
                                                             signed.OPERATOR: OPERATOR}),
        "MALFORMED", "no lock ID (key 3)", lock_id=LOCK_ID, current_version=0)
    return out


# --------------------------------------------------------------------------- main


def generate() -> dict[str, Any]:
    """All vector files as ``{filename: JSON-able object}``."""
    return {"credentials.json": _CredentialVectors().build(),
            "sessions.json": _sessions(),
            "messages.json": _messages(),
            "framing.json": _framing(),
            "signed.json": _signed()}


def render(obj: Any) -> str:
    """The exact text written to a vector file."""
    return json.dumps(obj, indent=1, ensure_ascii=True) + "\n"


def write(outdir: Path) -> list[Path]:
    """Write every vector file into ``outdir``; returns the paths."""
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, obj in generate().items():
        path = outdir / name
        path.write_text(render(obj))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """``python -m kagiya.hil.vectors OUTDIR``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m kagiya.hil.vectors OUTDIR", file=sys.stderr)
        return 2
    for path in write(Path(args[0])):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
