"""An emulator of the M2M SIM control service's HTTP API, for tests and the demo.

No real provider can be reached from here, so the tests run this as a **separate process**
(``python -m kagiya.server.simcontrol.emulator --port P --contractors FILE``), and the
adapter's real HTTP path is what they exercise. The emulator enforces the rules of the
service terms (m2m-sim-control-terms, 第3条 function table, 第10条 contractor IDs):

* every call authenticates with its contractor ID and password (HTTP Basic); a contractor
  sees only its own lines - another contractor's line is "not found";
* a chip SIM line starts in ``stock``. IMEI registration (チップ SIM IMEI 登録) is
  allowed only in ``stock`` and moves it to ``registered``. Activation (利用開始登録)
  moves ``registered`` to ``active``. Suspension (通信停止) is ``active`` to
  ``suspended``, and resumption (通信再開) is ``suspended`` to ``active``. Cancellation
  (解約) comes from any state but ``cancelled`` and is final: a cancelled line can never
  be resumed or suspended again. Any other transition is 409 ``invalid-transition``;
* status (状態取得), session monitoring (セッション監視: attached or not, last attach) and
  data usage (通信量取得) are read-only. A suspended or cancelled line never attaches.

The contractors file is JSON ``{"contractors": {id: {"password": p, "lines": [msisdn]}}}``.
Test-only hook: ``POST /_emulator/lines/{msisdn}/traffic {"bytes": n}`` simulates the
modem attaching and moving data (refused unless the line is active).
"""


import argparse
import json
import secrets
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, Field

STOCK, REGISTERED, ACTIVE, SUSPENDED, CANCELLED = (
    "stock", "registered", "active", "suspended", "cancelled")
TRANSITIONS = {
    "activate": ({REGISTERED}, ACTIVE),
    "suspend": ({ACTIVE}, SUSPENDED),
    "resume": ({SUSPENDED}, ACTIVE),
    "cancel": ({STOCK, REGISTERED, ACTIVE, SUSPENDED}, CANCELLED),
}


class ImeiIn(BaseModel):
    """The IMEI of the device the chip SIM is built into (15 digits)."""

    imei: str = Field(pattern=r"^[0-9]{15}$")


class TrafficIn(BaseModel):
    """Emulator hook: the modem attached and moved ``bytes``."""

    bytes: int = Field(ge=0, le=10**12)


def build(contractors: dict[str, Any]) -> FastAPI:
    """The emulator app over a contractors table (see the module doc)."""
    app = FastAPI(title="M2M SIM control (emulator)", docs_url=None, redoc_url=None)
    basic = HTTPBasic(auto_error=False)
    guard = threading.Lock()
    lines: dict[str, dict[str, Any]] = {}
    for cid, c in contractors.items():
        for msisdn in c.get("lines", ()):
            lines[msisdn] = {"msisdn": msisdn, "contractor": cid, "status": STOCK,
                             "imei": None, "plan": "m2m-basic", "bytes": 0,
                             "attached": False, "last_attach": None}

    def contractor(cred: Annotated[HTTPBasicCredentials | None, Depends(basic)]) -> str:
        c = contractors.get(cred.username) if cred else None
        if cred is None or c is None or not secrets.compare_digest(
                cred.password.encode(), str(c["password"]).encode()):
            raise HTTPException(401, {"code": "unauthorized"})
        return cred.username

    Who = Annotated[str, Depends(contractor)]

    def line(cid: str, msisdn: str) -> dict[str, Any]:
        ln = lines.get(msisdn)
        if ln is None or ln["contractor"] != cid:
            raise HTTPException(404, {"code": "line-not-found"})
        return ln

    def view(ln: dict[str, Any]) -> dict[str, Any]:
        return {k: ln[k] for k in ("msisdn", "status", "imei", "plan")}

    @app.get("/v1/lines/{msisdn}")
    def status(msisdn: str, cid: Who) -> dict[str, Any]:
        with guard:
            return view(line(cid, msisdn))

    @app.post("/v1/lines/{msisdn}/imei")
    def register_imei(msisdn: str, body: ImeiIn, cid: Who) -> dict[str, Any]:
        with guard:
            ln = line(cid, msisdn)
            if ln["status"] != STOCK:
                raise HTTPException(409, {"code": "invalid-transition", "status": ln["status"]})
            ln["imei"], ln["status"] = body.imei, REGISTERED
            return view(ln)

    @app.post("/v1/lines/{msisdn}/{action}")
    def transition(msisdn: str, action: str, cid: Who) -> dict[str, Any]:
        if action not in TRANSITIONS:
            raise HTTPException(404, {"code": "no-such-function"})
        allowed, to = TRANSITIONS[action]
        with guard:
            ln = line(cid, msisdn)
            if ln["status"] not in allowed:
                raise HTTPException(409, {"code": "invalid-transition", "status": ln["status"]})
            ln["status"] = to
            if to != ACTIVE:
                ln["attached"] = False
            return view(ln)

    @app.get("/v1/lines/{msisdn}/session")
    def session(msisdn: str, cid: Who) -> dict[str, Any]:
        with guard:
            ln = line(cid, msisdn)
            return {"msisdn": msisdn, "attached": ln["attached"],
                    "last_attach": ln["last_attach"]}

    @app.get("/v1/lines/{msisdn}/usage")
    def usage(msisdn: str, cid: Who) -> dict[str, Any]:
        with guard:
            ln = line(cid, msisdn)
            return {"msisdn": msisdn, "bytes": ln["bytes"]}

    @app.post("/_emulator/lines/{msisdn}/traffic")
    def traffic(msisdn: str, body: TrafficIn) -> dict[str, Any]:
        with guard:
            ln = lines.get(msisdn)
            if ln is None or ln["status"] != ACTIVE:
                raise HTTPException(409, {"code": "line-not-active"})
            ln["attached"], ln["last_attach"] = True, int(time.time())
            ln["bytes"] += body.bytes
            return {"msisdn": msisdn, "bytes": ln["bytes"]}

    return app


def main(argv: list[str] | None = None) -> None:
    """Serve the emulator on loopback."""
    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--contractors", type=Path, required=True)
    args = ap.parse_args(argv)
    table = json.loads(args.contractors.read_text())["contractors"]
    uvicorn.run(build(table), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
