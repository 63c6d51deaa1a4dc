"""Kagiya phone app simulator (``kagiya.phone``), built only on the public host SDK."""
