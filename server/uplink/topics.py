"""MQTT topic names of the uplink (docs/uplink.md, "Topics").

Every topic of a lock starts with ``kagiya/v1/locks/<lock ID>/``. The broker's ACL gives a
lock read access to its own ``down/+`` and write access to its own ``up/+`` only; the
username of a lock's broker account is its lock ID, so one ``pattern`` line covers all.
"""

from __future__ import annotations

from kagiya.sdk.protocol import UP_HEARTBEAT, UP_LOG, UPLINK_DOWN, UPLINK_PREFIX, UPLINK_PUSHED
from kagiya.sdk.protocol import MessageType as _T

__all__ = ["DOWN", "DOWN_DECOMMISSION", "DOWN_RECEIPT", "DOWN_REVOCATION", "DOWN_TIME", "PREFIX",
           "SHARED_UP", "UP_HEARTBEAT", "UP_LOG", "acl_text", "lock_topic", "parse_up"]

PREFIX = UPLINK_PREFIX

# server -> lock (retained: a lock that (re)connects gets the newest of each at once): the
# leaf of each message type the lock accepts pushed (kagiya.sdk.protocol.UPLINK_PUSHED)
DOWN: dict[_T, str] = {t: UPLINK_DOWN + leaf for leaf, t in UPLINK_PUSHED.items()}
DOWN_REVOCATION = DOWN[_T.REVOCATION]
DOWN_TIME = DOWN[_T.TIME]
DOWN_DECOMMISSION = DOWN[_T.DECOMMISSION]
DOWN_RECEIPT = DOWN[_T.LOG_RECEIPT]  # the signed log receipt for the newest stored page
# lock -> server: UP_HEARTBEAT and UP_LOG (kagiya.sdk.protocol)

#: The shared subscription every key-server process uses: the broker hands each lock
#: publication to exactly one of them (MQTT 5 §4.8.2; Mosquitto accepts it on 3.1.1 too).
SHARED_UP = "$share/kagiya-server/" + PREFIX + "+/up/+"


def lock_topic(lock_id: str, leaf: str) -> str:
    """The topic ``leaf`` (one of the constants above) of lock ``lock_id``."""
    return PREFIX + lock_id + "/" + leaf


def parse_up(topic: str) -> tuple[str, str] | None:
    """``(lock_id, leaf)`` of a lock -> server topic, or None for any other topic."""
    if not topic.startswith(PREFIX):
        return None
    rest = topic[len(PREFIX):].split("/")
    if len(rest) != 3 or rest[1] != "up" or not rest[0]:
        return None
    return rest[0], "up/" + rest[2]


def acl_text(server_user: str) -> str:
    """The broker's ACL file: the server reads and writes every lock topic; a lock (its
    username is its lock ID, ``%u``) reads its own ``down/+`` and writes its own ``up/+``."""
    return (
        f"user {server_user}\n"
        f"topic readwrite {PREFIX}#\n"
        "\n"
        f"pattern read {PREFIX}%u/down/+\n"
        f"pattern write {PREFIX}%u/up/+\n"
    )
