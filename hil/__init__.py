"""Kagiya bench (``kagiya.hil``): virtual and real lock targets, the scenario suite, and
the test-only helpers kept out of the SDK (``drbg``, ``vectors``, ``bumble_backend``)."""
