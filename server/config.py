"""Server settings: one frozen dataclass built from defaults, the environment and the CLI.

Zero configuration works: the data directory defaults to ``~/.kagiya/server`` and the
database to a SQLite file inside it. Every process of one deployment must see the same
database URL and the same master secret (see ``docs/server.md``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

DAY = 86400


def default_data_dir() -> Path:
    """``$KAGIYA_DATA_DIR`` or ``~/.kagiya/server``."""
    env = os.environ.get("KAGIYA_DATA_DIR")
    return Path(env) if env else Path.home() / ".kagiya" / "server"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _grace_days(days: int) -> int:
    """Days as seconds; a negative number stays -1 (off)."""
    return days * DAY if days >= 0 else -1


@dataclass(frozen=True)
class Settings:
    """Everything a server process needs; all processes of a deployment share it."""

    data_dir: Path = field(default_factory=default_data_dir)
    db_url: str = ""  # empty: sqlite file in data_dir
    issuer_name: str = "kagiya"
    key_lifetime_s: int = 7 * DAY  # own lifetime of an issued key (bounded revocation risk)
    # an existing key is handed out again while this fraction of its lifetime remains;
    # above 1.0 every download issues a fresh key (the benchmark uses that)
    reuse_min_remaining: float = 0.5
    nbf_backdate_s: int = 3600  # tolerance for locks whose clock lags
    operator_token_ttl_s: int = 900
    installer_token_max_ttl_s: int = 8 * 3600
    phone_token_ttl_s: int = DAY  # device-bound, refreshed with the device key
    enrollment_code_ttl_s: int = DAY
    max_window_s: int = 800 * DAY  # key-request window (leases of 710 days fit)
    token_rate_per_min: int = 30  # per client id and per address
    enroll_rate_per_min: int = 10  # per address
    time_rate_per_min: int = 120  # public time statements, per address
    idempotency_ttl_s: int = DAY
    # reverse proxies whose X-Forwarded-For is believed (none: the TCP peer is the address)
    trusted_proxies: frozenset[str] = frozenset()
    token_failures_per_min: int = 10  # wrong secrets per client ID and address
    housekeeping_interval_s: int = 600  # purge of expired rows per process (0: off)
    # My Page closes this long after the driver's last lease ended (-1: never by itself)
    contract_end_grace_s: int = 30 * DAY
    # connected locks (docs/uplink.md): the MQTT broker; empty host = no uplink
    mqtt_host: str = ""
    mqtt_port: int = 8883
    mqtt_ca_file: str = ""  # PEM of the CA that signed the broker's certificate
    mqtt_username: str = "kagiya-server"
    mqtt_password: str = ""
    mqtt_password_file: str = ""  # the broker's password file (per-lock accounts)
    mqtt_pid_file: str = ""  # the broker's pid file (SIGHUP after an account change)
    uplink_poll_ms: int = 100  # how often each process looks at the outbox
    uplink_time_interval_s: int = 3600  # time statements to connected locks (0: off)
    # a decommissioned lock that never acknowledged: its account and line go after this
    uplink_retire_grace_s: int = 30 * DAY
    # SIM lines (docs/uplink.md): JSON {operator_id: {url, contractor_id, password}}
    sim_contracts_file: str = ""
    sim_idle_s: int = 7 * DAY  # off lease this long (no started key request): suspend
    sim_interval_s: int = 60  # lifecycle pass per process (0: off)
    clock: Callable[[], float] = time.time
    # the monotonic clock the time authority compares ``clock`` with (kagiya.server.timeauth)
    monotonic: Callable[[], float] = time.monotonic
    def now(self) -> int:
        """Current unix time in whole seconds (tests replace ``clock``)."""
        return int(self.clock())

    @property
    def database_url(self) -> str:
        """The configured URL, or the default SQLite file in the data directory."""
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.data_dir / 'kagiya.db'}"

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]


def from_env(**overrides: object) -> Settings:
    """Settings from ``KAGIYA_*`` environment variables, then explicit overrides (not None)."""
    base = Settings(
        db_url=os.environ.get("KAGIYA_DB_URL", ""),
        issuer_name=os.environ.get("KAGIYA_ISSUER_NAME", "kagiya"),
        key_lifetime_s=_env_int("KAGIYA_KEY_LIFETIME_S", 7 * DAY),
        reuse_min_remaining=float(os.environ.get("KAGIYA_REUSE_MIN_REMAINING", "0.5")),
        token_rate_per_min=_env_int("KAGIYA_TOKEN_RATE_PER_MIN", 30),
        enroll_rate_per_min=_env_int("KAGIYA_ENROLL_RATE_PER_MIN", 10),
        time_rate_per_min=_env_int("KAGIYA_TIME_RATE_PER_MIN", 120),
        housekeeping_interval_s=_env_int("KAGIYA_HOUSEKEEPING_INTERVAL_S", 600),
        contract_end_grace_s=_grace_days(_env_int("KAGIYA_CONTRACT_END_GRACE_DAYS", 30)),
        mqtt_host=os.environ.get("KAGIYA_MQTT_HOST", ""),
        mqtt_port=_env_int("KAGIYA_MQTT_PORT", 8883),
        mqtt_ca_file=os.environ.get("KAGIYA_MQTT_CA_FILE", ""),
        mqtt_username=os.environ.get("KAGIYA_MQTT_USERNAME", "kagiya-server"),
        mqtt_password=os.environ.get("KAGIYA_MQTT_PASSWORD", ""),
        mqtt_password_file=os.environ.get("KAGIYA_MQTT_PASSWORD_FILE", ""),
        mqtt_pid_file=os.environ.get("KAGIYA_MQTT_PID_FILE", ""),
        uplink_poll_ms=_env_int("KAGIYA_UPLINK_POLL_MS", 100),
        uplink_time_interval_s=_env_int("KAGIYA_UPLINK_TIME_INTERVAL_S", 3600),
        uplink_retire_grace_s=_env_int("KAGIYA_UPLINK_RETIRE_GRACE_S", 30 * DAY),
        sim_contracts_file=os.environ.get("KAGIYA_SIM_CONTRACTS_FILE", ""),
        sim_idle_s=_env_int("KAGIYA_SIM_IDLE_S", 7 * DAY),
        sim_interval_s=_env_int("KAGIYA_SIM_INTERVAL_S", 60),
        trusted_proxies=frozenset(
            p.strip() for p in os.environ.get("KAGIYA_TRUSTED_PROXIES", "").split(",") if p.strip()
        ),
        token_failures_per_min=_env_int("KAGIYA_TOKEN_FAILURES_PER_MIN", 10),
    )
    clean = {k: v for k, v in overrides.items() if v is not None}
    if "data_dir" in clean:
        clean["data_dir"] = Path(str(clean["data_dir"]))
    return base.with_(**clean)
