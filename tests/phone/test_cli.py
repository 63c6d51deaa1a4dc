"""``kagiya phone …``: plain-words refusals with codes, exit statuses, keystore damage."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from kagiya.phone import cli as phone_cli
from kagiya.phone.app import PhoneApp
from kagiya.phone.profile import Profile
from kagiya.phone.refusals import explain
from kagiya.sdk.errors import ErrorCode
from kagiya.tools.cli import main

from tests.phone.fakes import FakeLock, FakeServer, connector


@pytest.fixture
def world(tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> tuple[FakeServer, dict[str, FakeLock]]:
    """The CLI wired to a fake server and fake locks (one profile home in tmp_path)."""
    server = FakeServer()
    locks = {"CAR-1": FakeLock("CAR-1"), "CAR-2": FakeLock("CAR-1")}  # CAR-2 answers as CAR-1

    def make_app(args: argparse.Namespace) -> PhoneApp:
        return PhoneApp(Profile(args.profile, home=tmp_path), server_factory=lambda _u: server,
                        lock_connector=connector(locks), clock=lambda: server.now)

    monkeypatch.setattr(phone_cli, "make_app", make_app)
    return server, locks


def _enrolled(server: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    server.codes["AAAA-BBBB-CCCC"] = "user-1"
    assert main(["phone", "enroll", "--server", "http://s", "--code", "aaaa-bbbb-cccc"]) == 0
    out = capsys.readouterr().out
    assert "enrolled phone ph_" in out and "synced in" in out


def test_every_error_code_has_plain_words() -> None:
    for code in ErrorCode:
        text = explain(code)
        assert text.startswith(code.remedy)
        assert text.endswith(f"[{code.name} {int(code)}]")
        assert len(text) > len(code.name) + 10 or code == ErrorCode.OK
    assert explain(99).endswith("[E99 99]")


def test_enroll_keys_unlock_and_refusals(world: tuple[FakeServer, dict[str, FakeLock]],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    server, locks = world
    _enrolled(server, capsys)
    key = server.add_key("user-1", "CAR-1", perms=3)
    server.add_key("user-1", "CAR-2", request="kr_2")
    assert main(["phone", "sync"]) == 0
    assert "2 new key(s)" in capsys.readouterr().out
    assert main(["phone", "keys"]) == 0
    out = capsys.readouterr().out
    assert "CAR-1" in out and "valid" in out and "doors+drive" in out

    assert main(["phone", "unlock", "CAR-1"]) == 0
    assert "unlocked CAR-1" in capsys.readouterr().out
    assert main(["phone", "drive", "on", "CAR-1"]) == 0
    assert "drive enabled" in capsys.readouterr().out

    assert main(["phone", "unlock", "CAR-2"]) == 1
    assert "different vehicle's lock. [WRONG_LOCK 20]" in capsys.readouterr().err

    locks["CAR-1"].time += 10 * 86400
    assert main(["phone", "lock", "CAR-1"]) == 1
    assert "[EXPIRED 22]" in capsys.readouterr().err
    locks["CAR-1"].time -= 10 * 86400

    locks["CAR-1"].revoked.add(bytes.fromhex(key["key_id"]))
    assert main(["phone", "unlock", "CAR-1"]) == 1
    assert "cancelled by the operator" in capsys.readouterr().err
    # the lock's REVOKED is remembered: the key is shown as cancelled, with the reason, and
    # the phone no longer offers it (exit 5, refused by the phone itself)
    assert main(["phone", "keys"]) == 0
    out = capsys.readouterr().out
    assert "cancelled" in out and "refused it as cancelled" in out
    assert main(["phone", "lock", "CAR-1"]) == 5
    assert "The key for CAR-1 was cancelled" in capsys.readouterr().err

    assert main(["phone", "unlock", "CAR-9"]) == 5
    assert "no key for lock CAR-9" in capsys.readouterr().err
    assert main(["phone", "logs", "--no-upload"]) == 0


def test_offline_sync_is_exit_3_and_keeps_working(world: tuple[FakeServer, dict[str, FakeLock]],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    server, _locks = world
    _enrolled(server, capsys)
    server.add_key("user-1", "CAR-1")
    assert main(["phone", "sync"]) == 0
    server.online = False
    assert main(["phone", "sync"]) == 3
    assert "still work at the vehicle" in capsys.readouterr().err
    assert main(["phone", "unlock", "CAR-1"]) == 0
    assert main(["phone", "logs", "CAR-1"]) == 0
    assert "stay queued" in capsys.readouterr().out
    assert main(["phone", "info"]) == 0
    assert "1 queued upload(s)" in capsys.readouterr().out


def test_truncated_keystore_is_a_clear_error(world: tuple[FakeServer, dict[str, FakeLock]],
                                             tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    server, _locks = world
    _enrolled(server, capsys)
    server.add_key("user-1", "CAR-1")
    assert main(["phone", "sync"]) == 0
    store = tmp_path / "default" / "keystore.kgy"
    store.write_bytes(store.read_bytes()[:50])
    capsys.readouterr()
    assert main(["phone", "keys"]) == 4
    err = capsys.readouterr().err
    assert "truncated" in err and "kagiya phone recover" in err
    assert "nothing was changed" in err.lower()
    assert main(["phone", "sync"]) == 4  # a sync never overwrites the damaged store
    assert len(store.read_bytes()) == 50
    assert main(["phone", "recover"]) == 0
    assert main(["phone", "keys"]) == 0
    assert main(["phone", "sync"]) == 0
    assert "1 withdrawn" not in capsys.readouterr().out


def test_not_enrolled_says_how(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["phone", "keys", "--home", str(tmp_path)]) == 5
    assert "kagiya phone enroll" in capsys.readouterr().err


def test_bad_enrollment_input_is_refused_clearly(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    home = str(tmp_path)
    assert main(["phone", "enroll", "--home", home, "--server", "http://x", "--code",
                 "ÄÄÄÄ-1234-5678"]) == 5
    assert "looks like XXXX-XXXX-XXXX" in capsys.readouterr().err
    assert main(["phone", "enroll", "--home", home, "--server", "ftp://x", "--code",
                 "ABCD-1234-5678"]) == 5
    assert "must start with https://" in capsys.readouterr().err
    port = "1"  # nothing listens on port 1: the server is unreachable, exit 3
    assert main(["phone", "enroll", "--home", home, "--server", f"http://127.0.0.1:{port}",
                 "--code", "ABCD-1234-5678"]) == 3
    assert "cannot be reached" in capsys.readouterr().err


def test_cli_speaks_japanese_with_lang_and_takes_the_link(
        world: tuple[FakeServer, dict[str, FakeLock]], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from kagiya.sdk.enrollment import enrollment_link

    server, locks = world
    monkeypatch.setenv("LANG", "ja_JP.UTF-8")
    monkeypatch.delenv("KAGIYA_LANG", raising=False)
    monkeypatch.delenv("LC_ALL", raising=False)
    server.codes["AAAA-BBBB-CCCC"] = "user-1"
    server.add_key("user-1", "CAR-1")
    # no --server: the link carries it
    assert main(["phone", "enroll", "--code", enrollment_link("http://s", "AAAA-BBBB-CCCC")]) == 0
    out = capsys.readouterr().out
    assert "ユーザー user-1 として http://s に登録しました" in out and "新しいキー 1 件" in out
    assert main(["phone", "keys"]) == 0
    assert "有効" in capsys.readouterr().out
    locks.pop("CAR-1")  # out of range
    assert main(["phone", "unlock", "CAR-1"]) == 1
    assert "車両に接続できません" in capsys.readouterr().err
    assert main(["phone", "unlock", "CAR-1", "--lang", "en"]) == 1
    assert "Cannot reach the vehicle" in capsys.readouterr().err


def test_bare_code_without_server_says_to_use_the_link(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["phone", "enroll", "--home", str(tmp_path), "--lang", "en",
                 "--code", "ABCD-1234-5678"]) == 5
    assert "use the enrollment link" in capsys.readouterr().err


def test_json_output_is_one_document_per_command(
        world: tuple[FakeServer, dict[str, FakeLock]],
        capsys: pytest.CaptureFixture[str]) -> None:
    """``--json``: stdout is exactly one JSON document, success or refusal (scripts parse it)."""
    import json

    server, locks = world
    server.codes["AAAA-BBBB-CCCC"] = "user-1"
    key = server.add_key("user-1", "CAR-1", perms=3)
    assert main(["phone", "enroll", "--server", "http://s", "--code", "aaaa-bbbb-cccc",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["command"] == "enroll" and doc["user_id"] == "user-1"
    assert doc["sync"]["added"] == [key["key_id"]]

    assert main(["phone", "keys", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [k["lock_id"] for k in doc["keys"]] == ["CAR-1"]
    assert doc["keys"][0]["permissions"] == ["doors", "drive"] and doc["usable"]

    assert main(["phone", "unlock", "CAR-1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["action"] == "unlock" and doc["state"]["doors_locked"] is False

    locks["CAR-1"].time += 10 * 86400
    captured_status = main(["phone", "lock", "CAR-1", "--json"])
    captured = capsys.readouterr()
    assert captured_status == 1
    doc = json.loads(captured.out)
    assert doc == {"ok": False, "command": "lock", "error": "lock", "code": 22,
                   "code_name": "EXPIRED", "message": doc["message"], "exit_status": 1}
    assert "[EXPIRED 22]" in doc["message"]

    assert main(["phone", "info", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["user_id"] == "user-1" and doc["keys"] == 1
