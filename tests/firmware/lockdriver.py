# MicroPython script (not collected by pytest): drives a Lock over a line protocol.
# One JSON request per stdin line, one JSON reply per stdout line. Bytes are hex.
import json
import sys

from kagiya_lock import provisioning
from kagiya_lock.hal.hal_unix import UnixHAL
from kagiya_lock.lock import Lock

hal = UnixHAL()
lock = Lock(hal)


def _hex(b):
    return "".join("%02x" % x for x in b)  # noqa: UP031 (MicroPython)


def serve(req):
    global lock
    op = req["op"]
    if op == "handle":
        return {"reply": _hex(lock.handle(req.get("conn", 1), bytes.fromhex(req["msg"])))}
    if op == "connect":
        lock.connected(req["conn"])
        return {}
    if op == "disconnect":
        lock.disconnected(req["conn"])
        return {}
    if op == "tick":
        lock.tick()
        return {}
    if op == "advance":
        hal.advance(req["s"])
        return {}
    if op == "provision":
        out = provisioning.provision(req["lock_id"], req["anchors"], req["now"],
                                     force=req.get("force", False), hal=hal)
        lock.load()
        return out
    if op == "reload":
        lock.load()
        return {}
    if op == "eval":
        value = eval(req["expr"], {"lock": lock, "hal": hal})  # noqa: S307 (test hook)
        return {"value": value}
    return {"error": "unknown op"}


while True:
    line = sys.stdin.readline()
    if not line:
        break
    try:
        out = serve(json.loads(line))
    except Exception as e:  # the driver reports, the test decides
        out = {"exc": repr(e)}
    sys.stdout.write(json.dumps(out) + "\n")
    try:
        sys.stdout.flush()
    except AttributeError:
        pass
