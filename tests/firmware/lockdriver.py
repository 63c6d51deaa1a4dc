# MicroPython script (not collected by pytest): drives a Lock over a line protocol.
# One JSON request per stdin line, one JSON reply per stdout line. Bytes are hex.
import gc
import json
import sys

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
    if op == "provision":  # imported here: a lock on a small heap never loads it
        from kagiya_lock import provisioning

        out = provisioning.provision(req["lock_id"], req["anchors"], req["now"],
                                     force=req.get("force", False), hal=hal,
                                     operator=req.get("operator", "op_test"))
        lock.load()
        return out
    if op == "reload":
        lock.load()
        return {}
    if op == "uplink":  # connected builds: start the MQTT uplink from the stored config
        from kagiya_lock.uplink import Uplink

        globals()["uplink"] = Uplink(lock, lock.store.load("uplink"))
        return {}
    if op == "pump":  # run the uplink until ``until`` is true or ``ms`` have passed
        import time

        up = globals()["uplink"]
        t0 = time.ticks_ms()
        env = {"lock": lock, "hal": hal, "uplink": up}
        until = compile(req["until"], "<until>", "eval") if req.get("until") else None
        frozen = hal.ticks_ms() if req.get("frozen") else None  # one instant for every
        # step: what arrives within the pump is handled as if at once, however slow the host
        while time.ticks_diff(time.ticks_ms(), t0) < req["ms"]:
            busy = up.step(hal.ticks_ms() if frozen is None else frozen)
            # checked after every step: the moment the lock holds a pushed revocation
            # it refuses the key, whatever the uplink does next (bench/uplink.py)
            if until is not None and eval(until, env):  # noqa: S307 (test hook)
                return {"value": True}
            if not busy:
                time.sleep_ms(2)
        return {"value": bool(req.get("until")) and eval(req["until"], env)}  # noqa: S307
    if op == "exec":  # test hook: run statements (e.g. inject a fault)
        exec(req["code"], {"lock": lock, "hal": hal})  # noqa: S102
        return {}
    if op == "squeeze":  # Lock.handle with at most req["free"] bytes of heap left
        msg = bytes.fromhex(req["msg"])
        gc.collect()
        sizes = (4096, 256, 16)
        ballast = [None, None, None]  # linked lists: no big list to grow
        for i in range(3):  # fill the heap completely, big blocks first
            try:
                while True:
                    ballast[i] = (bytearray(sizes[i]), ballast[i])
            except MemoryError:
                pass
        for i in range(3):  # then give back about req["free"] bytes
            n = (req["free"] - gc.mem_free()) // (sizes[i] + 48)
            while n > 0 and ballast[i] is not None:
                ballast[i] = ballast[i][1]
                n -= 1
            gc.collect()
        left = gc.mem_free()
        try:
            reply = lock.handle(req.get("conn", 1), msg)
        finally:
            ballast = None
            gc.collect()
        return {"reply": _hex(reply), "left": left}
    if op == "unlock_under_uplink":  # bench/uplink.py: the main loop's order, measured
        import time

        from kagiya_lock import cbor, proof

        # The phone's side of n warm UNLOCKs: protocol v2 rotates the nonce in every MACed
        # RESULT (field 7), so each proof is built from the previous reply, before the
        # request is due (not inside the measured latency).
        up = globals().get("uplink")
        secret, cti = bytes.fromhex(req["secret"]), bytes.fromhex(req["cti"])
        credential = bytes.fromhex(req["credential"])
        lid = proof.length_prefixed(req["lock_id"])
        nonce, counter, gap = bytes.fromhex(req["nonce"]), req["counter"], req["gap_us"]
        lat = []
        replies = []
        msg = None
        due = time.ticks_add(time.ticks_us(), gap)
        while len(replies) < req["n"]:
            if msg is None:
                counter += 1
                m = {0: 3, 1: cti, 2: counter, 3: 1,
                     4: proof.command_proof(secret, nonce, lid, cti, 1, counter, 0)}
                if not replies:
                    m[5] = credential
                msg = cbor.encode(m)
            if time.ticks_diff(time.ticks_us(), due) >= 0:  # a BLE request was queued
                reply = lock.handle(req.get("conn", 1), msg)
                lat.append(time.ticks_diff(time.ticks_us(), due))
                replies.append(_hex(reply))
                r, _ = cbor.decode(reply)
                if r is None or 7 not in r:  # refused: the bench reports it
                    break
                nonce, msg = r[7], None
                due = time.ticks_add(time.ticks_us(), gap + (hal.random(1)[0] * gap) // 256)
            elif up is not None:
                up.step(hal.ticks_ms())  # runs to completion before the request is seen
        return {"lat_us": lat, "replies": replies, "counter": counter}
    if op == "eval":
        value = eval(req["expr"], {"lock": lock, "hal": hal,  # noqa: S307 (test hook)
                                   "uplink": globals().get("uplink")})
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
