"""Installer pre-flight and server calls: refusals before the board is touched, no silence.

Before this, ``kagiya install all`` with a wrong token deployed and provisioned the board and
only then reported the token; a hung key server gave ~31 s without a word.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from kagiya.hil.board import VirtualBoard

from tests.tools.conftest import LiveServer, Result

Kagiya = Callable[..., Result]


@pytest.fixture
def hung_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers (a hung key server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    t.join(timeout=5)
    for c in held:
        c.close()
    listener.close()


def _board_untouched(board: VirtualBoard) -> bool:
    return not (board.root / "main.py").exists() and \
        not (board.root / "lib" / "kagiya_lock").exists()


def test_wrong_token_is_refused_before_the_board_is_touched(
        kagiya: Kagiya, board: VirtualBoard, key_server: LiveServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGIYA_OPERATOR_TOKEN", "not-a-real-token")
    r = kagiya("install", "all", "-p", board.port, "--server", key_server.url,
               "--lock-id", "CAR-0001", "--json", "--no-lockdown")
    assert r.status == 6, r.out + r.err
    assert r.json["error"] == "server-auth" and r.json["steps"] == {}
    assert _board_untouched(board)
    assert "not-a-real-token" not in r.out + r.err


def test_malformed_lock_id_is_refused_before_server_and_board(
        kagiya: Kagiya, board: VirtualBoard, hung_server: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGIYA_OPERATOR_TOKEN", "tok")
    r = kagiya("install", "all", "-p", board.port, "--server", hung_server,
               "--lock-id", "car_1", "--json")
    assert r.status == 2 and r.json["error"] == "usage"
    assert "invalid lock ID" in r.json["message"]
    assert "key server:" not in r.err  # the server was not even asked
    assert _board_untouched(board)


def test_hung_server_is_visible_and_ends_unreachable(
        kagiya: Kagiya, board: VirtualBoard, hung_server: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGIYA_OPERATOR_TOKEN", "tok")
    r = kagiya("install", "register", "-p", board.port, "--server", hung_server,
               "--server-timeout", "0.3", "--json")
    assert r.status == 6 and r.json["error"] == "server-unreachable"
    # --json: the document on stdout, each server call announced on stderr as it starts
    assert "key server: GET /v1/health (timeout 0.3 s)" in r.err
    assert _board_untouched(board)


def test_good_token_passes_preflight_and_says_so(
        kagiya: Kagiya, board: VirtualBoard, key_server: LiveServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAGIYA_OPERATOR_TOKEN", key_server.installer_token)
    r = kagiya("install", "all", "-p", board.port, "--server", key_server.url,
               "--lock-id", "CAR-0001", "--json", "--no-lockdown")
    assert r.status == 0, r.out + r.err
    assert "pre-flight: key server" in r.err and "token accepted" in r.err
    assert json.loads(r.out)["ok"] is True


def test_ports_lists_serial_ports_as_json(kagiya: Kagiya) -> None:
    r = kagiya("install", "ports", "--json")
    assert r.status == 0
    doc = json.loads(r.out)
    assert doc["ok"] is True and isinstance(doc["ports"], list)
    assert all({"device", "serial_number", "vid_pid"} <= set(p) for p in doc["ports"])
