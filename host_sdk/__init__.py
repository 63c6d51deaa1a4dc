"""Kagiya host SDK (``kagiya.sdk``): the protocol library and the BLE client integrators import."""
