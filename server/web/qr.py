"""QR codes for the console (segno): an enrollment link as an inline SVG image, so the
phone app scans the code *and* the server URL and never asks a driver for either."""

from __future__ import annotations

import segno


def svg_data_uri(text: str) -> str:
    """``data:image/svg+xml,…`` of a QR code carrying ``text`` (error correction M)."""
    return str(segno.make(text, error="m").svg_data_uri(scale=5, border=2))
