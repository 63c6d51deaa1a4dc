"""Worker processes die with the process that started them (``kagiya server run --workers N``).

uvicorn's supervisor starts the workers; if it is killed outright (SIGKILL, an OOM kill),
nothing tells them, and they would go on answering on the shared port with nobody to stop
or restart them. So each worker, as it loads the app:

* asks the kernel for SIGTERM when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``, via
  ctypes; the supervisor starts every worker from its main thread, which lives as long as
  the supervisor does), and
* watches its parent ID from a daemon thread (every platform, and the case where the parent
  died before the ``prctl``): when it is no longer the supervisor, the worker sends itself
  SIGTERM (uvicorn's graceful shutdown) and exits hard if that has not finished in 10 s.

``cmd_run`` names the supervisor in ``KAGIYA_SUPERVISOR_PID`` before starting uvicorn.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time

ENV = "KAGIYA_SUPERVISOR_PID"
PR_SET_PDEATHSIG = 1
POLL_S = 0.5
GRACE_S = 10.0
log = logging.getLogger("kagiya.server")


def _pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch(supervisor: int) -> None:
    while os.getppid() == supervisor:
        time.sleep(POLL_S)
    log.warning("the supervisor process %d is gone: this worker stops", supervisor)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE_S)
    os._exit(1)


def die_with_supervisor(environ: dict[str, str] | None = None) -> bool:
    """In a worker: stop when the supervisor named in ``KAGIYA_SUPERVISOR_PID`` dies.
    Returns False (doing nothing) when no supervisor is named or this process is it."""
    raw = (environ if environ is not None else os.environ).get(ENV, "")
    if not raw.isdigit() or int(raw) == os.getpid():
        return False
    supervisor = int(raw)
    _pdeathsig()
    threading.Thread(target=_watch, args=(supervisor,), name="kagiya-supervisor-watch",
                     daemon=True).start()
    return True
