"""Kagiya key server (``kagiya.server``)."""
