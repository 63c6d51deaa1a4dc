"""Per-lock broker accounts under concurrency, against the real Mosquitto: account
changes from many threads at once (several requests of one key server, or several
processes on one host) lose no account, and the broker's reloads in between never drop
the session of an account that stays (before the fix: 2 of 24 accounts survived and the
server's own account was lost)."""

from __future__ import annotations

import threading
from pathlib import Path

from kagiya.server.uplink.mosquitto import SERVER_USER, BrokerAccounts, Mosquitto

from tests.uplink.conftest import Peer


def _names(broker: Mosquitto) -> set[str]:
    return {line.split(":", 1)[0] for line in broker.password_file.read_text().splitlines()}


def _parallel(work: object, n: int) -> None:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]  # type: ignore[arg-type]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_concurrent_account_changes_lose_nothing_and_drop_no_live_session(
        broker: Mosquitto) -> None:
    drops: list[object] = []
    server = Peer(broker, SERVER_USER, broker.server_password, "test-watch")
    server.client.on_disconnect = lambda *a: drops.append(a)
    try:
        server.subscribe("kagiya/v1/locks/+/up/+")  # connected and subscribed
        # a second BrokerAccounts on the same files: as another key-server process would
        stores = [broker.accounts, BrokerAccounts(broker.password_file, broker.pid_file)]
        passwords: dict[str, str] = {}

        def create(i: int) -> None:
            for j in range(4):
                name = f"ACC-{i}-{j}"
                passwords[name] = stores[i % 2].create(name)

        _parallel(create, 6)
        assert _names(broker) == {SERVER_USER, *passwords}
        lock = Peer(broker, "ACC-0-0", passwords["ACC-0-0"], "ACC-0-0")  # a lock's works
        lock.close()

        def delete(i: int) -> None:
            for j in range(4):
                if (i, j) != (0, 0):
                    stores[i % 2].delete(f"ACC-{i}-{j}")

        _parallel(delete, 6)
        assert _names(broker) == {SERVER_USER, "ACC-0-0"}
        assert server.subscribe("kagiya/v1/locks/+/down/+") == [1]  # still the same session
        assert drops == []
    finally:
        server.close()


def test_a_change_replaces_the_file_whole(tmp_path: Path, broker: Mosquitto) -> None:
    """The file is replaced by a rename, never rewritten in place: its inode changes, and
    no temporary copy is left next to it."""
    before = broker.password_file.stat().st_ino
    broker.accounts.create("ACC-X")
    assert broker.password_file.stat().st_ino != before
    assert broker.password_file.stat().st_mode & 0o077 == 0  # still private
    leftovers = [p.name for p in broker.password_file.parent.iterdir()
                 if p.name.startswith(f".{broker.password_file.name}.")]
    assert leftovers == []
