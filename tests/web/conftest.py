"""Web tests reuse the phone tests' real key server (a subprocess on loopback)."""

from tests.phone.conftest import real_server  # noqa: F401 (a fixture)
