"""The people's web side of the key server: the driver's My Page (``/my``)."""
