"""The address a request comes from, for per-address limits: the TCP peer, never a header.

``X-Forwarded-For`` (RFC 7239's de-facto predecessor) is written by whoever sends the
request, so trusting it lets anyone pick the address a limit counts against. It is read
only when the TCP peer is one of the configured reverse proxies
(``KAGIYA_TRUSTED_PROXIES``, comma-separated addresses): then the address is the rightmost
entry that is not itself a trusted proxy (entries further left are the client's own claims).
``kagiya server run`` tells uvicorn not to rewrite the peer from the header itself.
"""

from __future__ import annotations

from fastapi import Request

UNKNOWN = "unknown"


def peer_address(request: Request, trusted_proxies: frozenset[str]) -> str:
    """The client address to count per-address limits against."""
    peer = request.client.host if request.client else UNKNOWN
    if peer not in trusted_proxies:
        return peer
    forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if hop not in trusted_proxies:
            return hop[:64]
    return peer
