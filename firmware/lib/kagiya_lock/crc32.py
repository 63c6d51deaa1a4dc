"""CRC-32 (ISO-HDLC, the zlib/PNG polynomial): ``binascii.crc32`` when present."""

try:
    import binascii

    _native = getattr(binascii, "crc32", None)
except ImportError:
    _native = None

_TABLE = None


def _slow(data):
    global _TABLE
    if _TABLE is None:
        t = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
            t.append(c)
        _TABLE = t
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def crc32(data):
    """CRC-32 of ``data`` as an unsigned 32-bit int."""
    if _native is not None:
        return _native(data) & 0xFFFFFFFF
    return _slow(data)
