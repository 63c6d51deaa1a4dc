"""The phone's use cases against in-memory fakes: offline first, revocation carried, no loss."""

from __future__ import annotations

from pathlib import Path

import pytest
from kagiya.phone.app import PhoneApp, PhoneError
from kagiya.phone.ports import Offline
from kagiya.phone.profile import Profile
from kagiya.sdk.errors import ErrorCode, ProtocolError

from tests.phone.fakes import FakeLock, FakeServer, connector

CODE = "ABCD-EFGH-JKLM"


def _phone(tmp_path: Path, server: FakeServer, locks: dict[str, FakeLock], name: str = "a",
           user: str = "user-1", code: str = CODE) -> PhoneApp:
    server.codes[code] = user
    app = PhoneApp(Profile(name, home=tmp_path), server_factory=lambda _url: server,
                   lock_connector=connector(locks), clock=lambda: server.now)
    app.enroll("http://server", code)
    return app


async def test_enroll_download_then_unlock_offline(tmp_path: Path) -> None:
    server = FakeServer()
    locks = {"CAR-1": FakeLock("CAR-1")}
    app = _phone(tmp_path, server, locks)
    server.add_key("user-1", "CAR-1")
    report = app.sync()
    assert len(report.added) == 1 and "1 new key" in report.summary()
    server.online = False  # the vehicle is in an underground car park
    out = await app.run("CAR-1", "unlock")
    assert not out.state.doors_locked
    assert (await app.run("CAR-1", "drive-on")).state.drive_enabled
    assert (await app.run("CAR-1", "lock")).state.doors_locked
    assert locks["CAR-1"].seen_time_statements  # the stored time statement was carried
    assert app.state().keys[out.key.key_id].accepted_by_lock


async def test_revocation_carried_by_second_phone(tmp_path: Path) -> None:
    server = FakeServer()
    locks = {"CAR-1": FakeLock("CAR-1")}
    first = _phone(tmp_path, server, locks, "first")
    key = server.add_key("user-1", "CAR-1")
    first.sync()
    second = _phone(tmp_path, server, locks, "second", user="user-2", code="ZZZZ-YYYY-XXXX")
    server.add_key("user-2", "CAR-1", request="kr_2")
    server.cancel("user-1", key["key_id"], "CAR-1")  # first phone is offline meanwhile
    report = second.sync()
    assert report.revocations == {"CAR-1": 1}
    await second.run("CAR-1", "status")
    with pytest.raises(ProtocolError) as exc:
        await first.run("CAR-1", "unlock")
    assert exc.value.code == ErrorCode.REVOKED
    # when the first phone syncs it is told its key was withdrawn (not silently)
    report = first.sync()
    assert [k.key_id_hex for k in report.removed] == [key["key_id"]]
    assert "withdrawn" in report.summary()


async def test_logs_queue_offline_and_upload_later(tmp_path: Path) -> None:
    server = FakeServer()
    locks = {"CAR-1": FakeLock("CAR-1")}
    app = _phone(tmp_path, server, locks)
    server.add_key("user-1", "CAR-1")
    app.sync()
    server.online = False
    await app.run("CAR-1", "unlock")
    assert await app.collect_logs("CAR-1") == 1
    with pytest.raises(Offline):
        app.sync()
    assert "offline" in app.state().last_sync_error
    assert len(Profile("a", home=tmp_path).outbox) == 1  # survives a restart
    await app.run("CAR-1", "lock")
    assert await app.collect_logs("CAR-1") == 1  # only the new record (cursor advanced)
    server.online = True
    report = app.sync()
    assert report.uploads.sent == 2 and report.uploads.remaining == 0
    assert [p["records"] for p in server.uploads] == [[b"1:unlock".hex()], [b"2:lock".hex()]]


async def test_refused_upload_is_kept_aside(tmp_path: Path) -> None:
    server = FakeServer(reject_uploads=True)
    locks = {"CAR-1": FakeLock("CAR-1")}
    app = _phone(tmp_path, server, locks)
    server.add_key("user-1", "CAR-1")
    app.sync()
    await app.run("CAR-1", "unlock")
    await app.collect_logs("CAR-1")
    report = app.sync()
    assert report.uploads.rejected == 1
    assert len(app.profile.outbox.rejected()) == 1


async def test_phone_side_refusals_are_clear(tmp_path: Path) -> None:
    server = FakeServer()
    locks = {"CAR-1": FakeLock("CAR-1"), "CAR-2": FakeLock("CAR-2")}
    app = _phone(tmp_path, server, locks)
    with pytest.raises(PhoneError, match="no key for lock CAR-1"):
        await app.run("CAR-1", "unlock")
    server.add_key("user-1", "CAR-1", perms=1)
    app.sync()
    with pytest.raises(PhoneError, match="has keys for: CAR-1"):
        await app.run("CAR-2", "unlock")
    with pytest.raises(PhoneError, match="allows: doors"):
        await app.run("CAR-1", "drive-on")
    with pytest.raises(PhoneError, match="already enrolled"):
        app.enroll("http://server", "QQQQ-QQQQ-QQQQ")


async def test_expired_key_reaches_lock_and_lock_says_expired(tmp_path: Path) -> None:
    server = FakeServer()
    locks = {"CAR-1": FakeLock("CAR-1")}
    app = _phone(tmp_path, server, locks)
    server.add_key("user-1", "CAR-1", exp=server.now + 5)
    app.sync()
    server.now += 100
    locks["CAR-1"].time += 100
    assert app.state().keys_for("CAR-1")[0].status_at(app.now()) == "expired"
    with pytest.raises(ProtocolError) as exc:
        await app.run("CAR-1", "unlock")
    assert exc.value.code == ErrorCode.EXPIRED


def test_token_refresh_with_device_key(tmp_path: Path) -> None:
    server = FakeServer()
    app = _phone(tmp_path, server, {})
    server.tokens.clear()  # server forgot / expired every token
    app.sync()
    assert app.state().token in server.tokens
    # the server accepts each signed timestamp once: a second refresh within the same
    # second (the clock here stands still) signs a newer timestamp, never a replay
    server.tokens.clear()
    app.sync()
    assert app.state().token in server.tokens
    assert len(server.auth_proofs) == 2


def test_older_revocation_update_never_replaces_newer(tmp_path: Path) -> None:
    server = FakeServer()
    app = _phone(tmp_path, server, {})
    server.add_key("user-1", "CAR-1")
    server.revocations["CAR-1"] = (5, b"rev:new")
    app.sync()
    server.revocations["CAR-1"] = (3, b"rev:old")  # e.g. a lagging replica
    assert app.sync().revocations == {}
    assert app.state().revocations["CAR-1"].version == 5


def test_malformed_server_answers_never_crash(tmp_path: Path) -> None:
    import httpx
    from kagiya.phone.ports import ServerRefused
    from kagiya.phone.server_link import HttpServerLink

    answers = iter([
        httpx.Response(200, text="not json"),
        httpx.Response(201, json={"phone_id": "ph_1"}),
        httpx.Response(200, json={"keys": [{"key_id": "zz"}], "revocations": [], "time": 1,
                                  "time_statement": "00"}),
        httpx.Response(500, text="boom"),
        httpx.Response(403, json={"code": "user-suspended", "detail": "suspended"}),
    ])
    link = HttpServerLink("http://x", client=httpx.Client(
        base_url="http://x", transport=httpx.MockTransport(lambda _r: next(answers))))

    def prove(method: str, url: str, token: str, at: int | None) -> str:
        return "proof"

    with pytest.raises(ServerRefused, match="not JSON"):
        link.sync("t", prove)
    with pytest.raises(ServerRefused, match="token answer lacks"):
        link.enroll("ABCD-EFGH-JKLM", bytes(32), bytes(64))
    with pytest.raises(ServerRefused, match="download is malformed"):
        link.sync("t", prove)
    with pytest.raises(Offline):
        link.sync("t", prove)
    with pytest.raises(ServerRefused) as exc:
        link.sync("t", prove)
    assert exc.value.code == "user-suspended"


def test_server_link_waits_out_a_short_retry_after_and_refuses_a_long_one() -> None:
    """The phone app's HTTP goes through the one phone-side client (PhoneClient): a 429 or
    503 asking for a short pause is waited out with the same request; a long one is the
    app's ServerRefused 429 (the outbox keeps the item), a 503 after the retries Offline."""
    import httpx
    from kagiya.phone.ports import ServerRefused
    from kagiya.phone.server_link import HttpServerLink

    body = {"keys": [], "revocations": [], "time": 7, "time_statement": "00",
            "issuer_keys": [], "pending": []}
    busy = {"code": "rate-limited", "detail": "slow down"}
    answers = iter([
        httpx.Response(429, json=busy, headers={"Retry-After": "2"}),
        httpx.Response(503, json={"code": "unavailable", "detail": "x"},
                       headers={"Retry-After": "1"}),
        httpx.Response(200, json=body),
        httpx.Response(429, json=busy, headers={"Retry-After": "3600"}),
        *[httpx.Response(503, json={"code": "unavailable", "detail": "x"})] * 3,
    ])
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(answers)

    slept: list[float] = []
    link = HttpServerLink("http://x", sleep=slept.append, client=httpx.Client(
        base_url="http://x", transport=httpx.MockTransport(answer)))
    proofs: list[tuple[str, str]] = []

    def prove(method: str, url: str, token: str, at: int | None) -> str:
        proofs.append((method, url))
        return f"proof-{len(proofs)}"

    assert link.sync("tok", prove).time == 7
    assert slept == [2.0, 1.0]
    assert [r.headers["DPoP"] for r in seen] == ["proof-1", "proof-2", "proof-3"]  # one each
    assert proofs[0] == ("GET", "http://x/v1/phone/keys")
    with pytest.raises(ServerRefused) as exc:
        link.upload_log("tok", {"lock_id": "CAR-1"}, prove, "item-1")
    assert (exc.value.status, exc.value.code) == (429, "rate-limited")
    assert seen[-1].headers["Idempotency-Key"] == "item-1"
    with pytest.raises(Offline):
        link.upload_log("tok", {"lock_id": "CAR-1"}, prove, "item-1")
    assert {r.headers["Idempotency-Key"] for r in seen[-3:]} == {"item-1"}
