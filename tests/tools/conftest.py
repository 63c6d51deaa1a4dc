"""Fixtures of the installer tests: virtual boards, a real key server, a CLI runner."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kagiya.hil.board import VirtualBoard

from tests.server.live import free_port


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """One mpy-cross cache for the whole session (compiling is not what these tests test)."""
    monkeypatch.setenv("KAGIYA_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "mpy-cache"))
    monkeypatch.delenv("KAGIYA_OPERATOR_TOKEN", raising=False)


@pytest.fixture
def board_factory(tmp_path: Path) -> Iterator[Callable[..., VirtualBoard]]:
    """Start virtual boards (``run_main=False``); all are powered off at the end."""
    boards: list[VirtualBoard] = []

    def make(root: Path | None = None, **kwargs: Any) -> VirtualBoard:
        kwargs.setdefault("run_main", False)
        b = VirtualBoard(root or tmp_path / f"board{len(boards)}", **kwargs)
        b.start()
        boards.append(b)
        return b

    yield make
    for b in boards:
        b.stop()


@pytest.fixture
def board(board_factory: Callable[..., VirtualBoard]) -> VirtualBoard:
    """One powered virtual board with an empty flash."""
    return board_factory()


@dataclass
class Result:
    """Outcome of one ``kagiya`` invocation."""

    status: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        """stdout parsed as the single JSON document of ``--json``."""
        return json.loads(self.out)


@pytest.fixture
def kagiya(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run the ``kagiya`` command line in-process and capture its output."""
    from kagiya.tools.cli import main

    def run(*argv: str) -> Result:
        capsys.readouterr()
        status = main(list(argv))
        captured = capsys.readouterr()
        return Result(status, captured.out, captured.err)

    return run


@dataclass
class LiveServer:
    """A key server on loopback with one operator."""

    url: str
    operator_token: str
    installer_token: str
    client_id: str
    client_secret: str
    stop: Callable[[], None]


@pytest.fixture
def key_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A real key server (uvicorn, SQLite) on a free loopback port, with an operator."""
    import uvicorn
    from kagiya.server import admin
    from kagiya.server.app import create_app
    from kagiya.server.client import OperatorClient
    from kagiya.server.config import Settings

    app = create_app(Settings(data_dir=tmp_path / "server"))
    rt = app.state.runtime
    now = int(time.time())
    op = admin.create_operator(rt, "Fleet", 100, now - 86400, now + 365 * 86400)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("key server did not start")
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    client = OperatorClient.login(url, op.client_id, op.client_secret)
    installer = client.installer_token()

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    live = LiveServer(url, str(client.token), installer, op.client_id, op.client_secret, stop)
    client.close()
    yield live
    stop()
