"""Field diagnostics: the traceback of an unexpected exception, when the HAL allows it.

The lock turns every unexpected exception into ``ERROR INTERNAL`` and stays usable; without
a traceback such a failure cannot be diagnosed. ``report(hal, exc)`` prints it to stderr
when ``hal.debug`` is true: on in the unix port (tests, the virtual board; ``KAGIYA_DEBUG=0``
turns it off), off in production builds (``Esp32HAL.debug``). It never raises.
"""

import sys


def report(hal, exc):
    """Print ``exc``'s traceback to stderr if ``hal.debug``; never raises."""
    try:
        if getattr(hal, "debug", False):
            sys.print_exception(exc, sys.stderr)  # type: ignore[arg-type]  # a stream
    except Exception:  # a diagnostic must never turn into a second failure
        pass
