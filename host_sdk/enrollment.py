"""What a phone signs with its device key for the key server (docs/server.md, Phone API).

A phone owns an Ed25519 device key (RFC 8032). It proves possession of that key to the key
server twice, and both formats are defined here once, for the phone and the server alike:

* **Enrollment** (``POST /v1/phone/enroll``)::

      Ed25519(device_key, "KGY1-ENROLL" || code || device_public)

  ``code`` is the one-time enrollment code as ASCII, with its dashes (``ABCD-EFGH-JKLM``);
  ``device_public`` the 32-byte raw public key. The signature binds the code to the key,
  so a code seen in transit cannot enroll another key.

* **Token refresh** (``POST /v1/phone/token``)::

      Ed25519(device_key, "KGY1-PHONE" || phone_id || u64be(timestamp))

  ``phone_id`` as ASCII, ``timestamp`` in unix seconds, accepted within ±300 s of the
  server's clock and once per (phone, timestamp) - sign a new timestamp for every refresh.

The functions are pure (no keys, no clocks): they return the bytes to sign or to verify.
Producing-side mistakes (a non-ASCII code, a 31-byte public key) raise ``ValueError``.
"""

from __future__ import annotations

import re

__all__ = [
    "AUTH_LABEL",
    "ENROLL_LABEL",
    "LINK_PREFIX",
    "auth_message",
    "enroll_message",
    "enrollment_link",
    "parse_enrollment",
]

ENROLL_LABEL = b"KGY1-ENROLL"
AUTH_LABEL = b"KGY1-PHONE"
DEVICE_PUBLIC_LEN = 32  # raw Ed25519 public key (RFC 8032 §5.1.5)
_ASCII = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces


def _ascii(name: str, value: str) -> bytes:
    if not isinstance(value, str) or not _ASCII.match(value):
        raise ValueError(f"{name} must be 1-128 printable ASCII characters")
    return value.encode("ascii")


def enroll_message(code: str, device_public: bytes) -> bytes:
    """The bytes a phone signs to enroll: ``"KGY1-ENROLL" || code || device_public``.

    ``code`` is the one-time code exactly as the server issued it (ASCII, with dashes);
    ``device_public`` the phone's raw 32-byte Ed25519 public key.
    """
    if len(device_public) != DEVICE_PUBLIC_LEN:
        raise ValueError(f"device_public must be {DEVICE_PUBLIC_LEN} bytes")
    return ENROLL_LABEL + _ascii("code", code) + bytes(device_public)


def auth_message(phone_id: str, timestamp: int) -> bytes:
    """The bytes a phone signs to refresh its token:
    ``"KGY1-PHONE" || phone_id || u64be(timestamp)``."""
    if type(timestamp) is not int or not 0 <= timestamp < 1 << 64:
        raise ValueError("timestamp must be an unsigned 64-bit integer (unix seconds)")
    return AUTH_LABEL + _ascii("phone_id", phone_id) + timestamp.to_bytes(8, "big")


# -- the enrollment link: the one-time code together with the server it belongs to ----------
#
#     kagiya://enroll?server=<percent-encoded server URL>&code=ABCD-EFGH-JKLM
#
# The operator's console shows it as a QR code and as text; a phone takes the server URL from
# it, so a driver never types one. A bare code (no server) is still accepted by the phone when
# the server URL is given separately.

LINK_PREFIX = "kagiya://enroll?"
_CODE = re.compile(r"^[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$")
_SERVER = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")


def enrollment_link(server_url: str, code: str) -> str:
    """The link carrying ``code`` and ``server_url`` (``ValueError`` on a malformed one)."""
    from urllib.parse import urlencode

    server_url = server_url.rstrip("/")
    if not _SERVER.match(server_url) or not _CODE.match(code):
        raise ValueError("an enrollment link needs an http(s) server URL and a code")
    return LINK_PREFIX + urlencode({"server": server_url, "code": code})


def parse_enrollment(text: str) -> tuple[str | None, str]:
    """``(server URL or None, code)`` from an enrollment link or a bare code.

    Raises ``ValueError`` with a reason when ``text`` is neither (letters are upper-cased,
    surrounding spaces dropped; a link with extra or repeated fields is refused).
    """
    from urllib.parse import parse_qs

    text = (text or "").strip()
    if not text.startswith(LINK_PREFIX):
        code = text.upper()
        if not _CODE.match(code):
            raise ValueError("not an enrollment code (XXXX-XXXX-XXXX) or link")
        return None, code
    fields = parse_qs(text[len(LINK_PREFIX):], keep_blank_values=True, max_num_fields=4)
    if set(fields) != {"server", "code"} or any(len(v) != 1 for v in fields.values()):
        raise ValueError("an enrollment link has exactly one server and one code")
    server, code = fields["server"][0].rstrip("/"), fields["code"][0].strip().upper()
    if not _SERVER.match(server) or not _CODE.match(code):
        raise ValueError("the enrollment link's server URL or code is malformed")
    return server, code
