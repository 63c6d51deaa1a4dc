"""``kagiya demo``: the whole offline unlock story, end to end, on the embedded defaults.

Every component runs as its own process through the same ``kagiya`` commands a person
types (docs/tutorial.md tells the story step by step): the key server on SQLite, a virtual
lock board provisioned and registered by the installer tools and then running its firmware
on the real MicroPython interpreter behind a virtual BLE radio, and two phones. The
operator's actions go through the server's HTTP API with client credentials.

Each step prints one line with its outcome and timing; the run ends with a summary table.
Exit status 0 when every step had the expected outcome. Every process started here is
stopped at the end, also on Ctrl-C or SIGTERM (each runs in its own process group).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kagiya.tools.firmware import FirmwareNotFoundError, firmware_root

LOCK_ID = "CAR-0001"
DAY = 86400
KAGIYA = [sys.executable, "-m", "kagiya.tools.cli"]


class StepFailed(Exception):
    """A step did not have its expected outcome."""


# -- processes ---------------------------------------------------------------------------


@dataclass
class Proc:
    """A child process with its output collected line by line (and copied to a log file)."""

    name: str
    popen: subprocess.Popen[str]
    lines: queue.Queue[str]
    log_path: Path

    def wait_line(self, pattern: str, timeout: float) -> str:
        """Wait for an output line matching ``pattern``; returns the whole line."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StepFailed(f"{self.name}: no line matching {pattern!r} within {timeout:.0f}"
                                 f" s (see {self.log_path})")
            try:
                line = self.lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                if self.popen.poll() is not None and self.lines.empty():
                    raise StepFailed(f"{self.name} exited with {self.popen.returncode} "
                                     f"(see {self.log_path})") from None
                continue
            if rx.search(line):
                return line


class Supervisor:
    """Starts processes in their own process groups and stops every one of them."""

    def __init__(self, logdir: Path, env: dict[str, str]) -> None:
        self.logdir = logdir
        self.env = env
        self.procs: dict[str, Proc] = {}
        self.pids: list[int] = []  # every process group ever started (for the report)

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> Proc:
        """Start ``argv``; stdout and stderr are merged, logged and readable as lines."""
        log_path = self.logdir / f"{name}.log"
        popen = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1, env={**self.env, **(env or {})},
            start_new_session=True,
        )
        self.pids.append(popen.pid)
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            assert popen.stdout is not None
            with open(log_path, "a", encoding="utf-8") as log:
                for line in popen.stdout:
                    log.write(line)
                    log.flush()
                    lines.put(line.rstrip("\n"))

        threading.Thread(target=pump, name=f"pump-{name}", daemon=True).start()
        proc = Proc(name, popen, lines, log_path)
        self.procs[name] = proc
        return proc

    def stop(self, name: str, timeout: float = 10.0) -> None:
        """Stop one process group as Ctrl-C would (SIGINT: each component cleans up its own
        children), then SIGTERM, then SIGKILL."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.popen.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.popen.wait(wait)
            except subprocess.TimeoutExpired:
                continue
            # the leader is gone; make sure nothing else of its group lingers
            try:
                os.killpg(proc.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break

    def stop_all(self) -> None:
        """Stop everything still running, newest first."""
        for name in reversed(list(self.procs)):
            self.stop(name)


def free_port() -> int:
    """A TCP port free right now on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- steps -------------------------------------------------------------------------------


@dataclass
class StepResult:
    """One step of the story."""

    number: int
    title: str
    ok: bool
    outcome: str
    seconds: float
    data: dict[str, Any] = field(default_factory=dict)


class Story:
    """Runs steps in order, printing one line per step."""

    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out
        self.steps: list[StepResult] = []

    def step(self, title: str, fn: Callable[[], str | tuple[str, dict[str, Any]]]) -> StepResult:
        """Run ``fn`` (returns the outcome text, optionally with data); stop the story on
        failure."""
        n = len(self.steps) + 1
        t0 = time.monotonic()
        try:
            got = fn()
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            why = str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {exc}"
            res = StepResult(n, title, False, why, time.monotonic() - t0)
            self.steps.append(res)
            self.out(f"✗ {n:2d}. {title}: {why}  ({res.seconds:.2f} s)")
            raise StepFailed(why) from exc
        text, data = got if isinstance(got, tuple) else (got, {})
        details = data.pop("details", [])
        res = StepResult(n, title, True, text, time.monotonic() - t0, data)
        self.steps.append(res)
        self.out(f"✓ {n:2d}. {title}: {text}  ({res.seconds:.2f} s)")
        for line in details:
            self.out(f"      {line}")
        return res


@dataclass
class Cli:
    """Runs ``kagiya`` commands (as a person would type them) and checks their outcome."""

    env: dict[str, str]
    logdir: Path

    def run(self, *args: str, expect: int = 0, timeout: float = 120.0,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``kagiya *args``; :class:`StepFailed` if the exit status is not ``expect``."""
        try:
            done = subprocess.run([*KAGIYA, *args], capture_output=True, text=True,
                                  timeout=timeout, env={**self.env, **(env or {})},
                                  stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired as exc:
            raise StepFailed(f"`kagiya {' '.join(args[:3])}` timed out") from exc
        with open(self.logdir / "commands.log", "a", encoding="utf-8") as log:
            log.write(f"$ kagiya {' '.join(args)}\n{done.stdout}{done.stderr}"
                      f"[exit {done.returncode}]\n")
        if done.returncode != expect:
            tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-3:]
            raise StepFailed(f"`kagiya {' '.join(args[:2])}` exited {done.returncode} "
                             f"(expected {expect}): {' | '.join(tail)}")
        return done


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


# -- the story ---------------------------------------------------------------------------


class Demo:
    """The story's state: work directory, processes, server URL, IDs."""

    def __init__(self, workdir: Path, out: Callable[[str], None]) -> None:
        self.workdir = workdir
        self.logdir = workdir / "logs"
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "KAGIYA_DATA_DIR": str(workdir / "server"),
            "KAGIYA_PHONE_HOME": str(workdir / "phones"),
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("KAGIYA_PHONE_PASSPHRASE", None)
        self.sup = Supervisor(self.logdir, self.env)
        self.cli = Cli(self.env, self.logdir)
        self.story = Story(out)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.board_root = workdir / "board"
        self.creds: dict[str, str] = {}
        self.ids: dict[str, str] = {}
        self.transport = ""
        self.links: dict[str, str] = {}

    # helpers
    def operator(self) -> Any:
        """A logged-in operator client (HTTP API, OAuth2 client credentials)."""
        from kagiya.server.client import OperatorClient

        return OperatorClient.login(self.url, self.creds["client_id"], self.creds["client_secret"])

    def phone(self, profile: str, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        """``kagiya phone <cmd> --profile P …`` (BLE commands get the virtual radio)."""
        cmd, rest = args[0], list(args[1:])
        extra = ["--transport", self.transport] if cmd in (
            "unlock", "lock", "drive", "status", "logs") and self.transport else []
        return self.cli.run("phone", cmd, "--profile", profile, *rest, *extra, expect=expect)

    def start_server(self) -> str:
        proc = self.sup.start("server", [*KAGIYA, "server", "run", "--port", str(self.port),
                                         "--log-level", "warning"])
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/v1/health", timeout=1).status_code == 200:
                    return f"listening on {self.url} (SQLite in {self.workdir / 'server'})"
            except httpx.HTTPError:
                pass
            if proc.popen.poll() is not None:
                raise StepFailed(f"the key server exited (see {proc.log_path})")
            if time.monotonic() > deadline:
                raise StepFailed("the key server did not answer /v1/health within 60 s")
            time.sleep(0.1)

    # steps
    def s_bootstrap(self) -> str:
        mp = Path(sys.executable).with_name("micropython")
        try:
            fw = firmware_root() / "main.py"
        except FirmwareNotFoundError as exc:
            raise StepFailed(str(exc)) from None
        missing = [str(p) for p in (mp, fw) if not p.exists()]
        if missing:
            raise StepFailed(f"missing {', '.join(missing)} (run `make demo` from the clone)")
        return f"python {sys.version.split()[0]}, MicroPython at {mp.name}, work dir {self.workdir}"

    def s_operator(self) -> str:
        done = self.cli.run("server", "admin", "create-operator", "--name", "Demo Lease Co.",
                            "--quota", "10")
        self.creds = json.loads(done.stdout)
        return f"operator {self.creds['operator_id']} (client {self.creds['client_id']})"

    def s_partner_user(self) -> str:
        op = self.operator()
        self.ids["partner"] = op.create_partner("Shinagawa Motors")["partner_id"]
        self.ids["alice"] = op.create_user()["user_id"]
        self.ids["bob"] = op.create_user()["user_id"]
        op.close()
        return (f"partner {self.ids['partner']}, users {self.ids['alice']} (Alice) "
                f"and {self.ids['bob']} (Bob)")

    def install_board(self, label: str, *extra: str) -> None:
        """Start the virtual board and run `kagiya install all` on it with an installer token."""
        op = self.operator()
        token = op.installer_token(3600)
        op.close()
        proc = self.sup.start("board", [*KAGIYA, "lock", "board", "--root", str(self.board_root),
                                        "--no-main", "--json"])
        port = json.loads(proc.wait_line(r"^\{.*\"port\"", 60))["port"]
        self.cli.run("install", "all", "--port", port, "--server", self.url, "--lock-id",
                     LOCK_ID, "--vehicle-label", label, *extra,
                     env={"KAGIYA_OPERATOR_TOKEN": token}, timeout=300)
        self.sup.stop("board")

    def s_board_install(self) -> str:
        self.install_board("Demo car 品川 300 あ 12-34")
        op = self.operator()
        lock = op.get_lock(LOCK_ID)
        if self.ids.get("partner"):
            op.update_lock(LOCK_ID, partner_id=self.ids["partner"])
        op.close()
        return (f"{LOCK_ID} deployed, provisioned, registered, self-tested "
                f"(lock key {lock['lock_key_id']})")

    def s_lock_on_air(self) -> str:
        # the installer deployed the real firmware; `lock sim` adds the bench's BLE shim
        proc = self.sup.start("lock", [*KAGIYA, "lock", "sim", "--dir", str(self.board_root)])
        ready = json.loads(proc.wait_line(r"^\{.*\"transport\"", 120))
        self.transport = str(ready["transport"])
        return f"{LOCK_ID} advertising on the virtual radio ({self.transport})"

    def s_enroll(self, who: str) -> str:
        op = self.operator()
        code = op.enrollment_code(self.ids[who])["code"]
        op.close()
        done = self.phone(who, "enroll", "--server", self.url, "--code", code, "--no-sync")
        return _last_line(done.stdout)

    def s_key_request(self, who: str, days: int) -> str:
        op = self.operator()
        now = int(time.time())
        req = op.create_key_request(self.ids[who], LOCK_ID, now - 60, now + days * DAY,
                                    ["doors", "drive", "log"])
        op.close()
        self.ids[f"request-{who}"] = req["request_id"]
        return f"{req['request_id']} for {who} at {LOCK_ID}, {days} days, doors+drive+log"

    def s_sync(self, who: str) -> str:
        return _last_line(self.phone(who, "sync").stdout)

    def s_stop_server(self) -> str:
        self.sup.stop("server")
        import httpx

        try:
            httpx.get(self.url + "/v1/health", timeout=1)
        except httpx.HTTPError:
            return "key server stopped: the vehicle is offline from here on"
        raise StepFailed("the key server still answers")

    def s_ble(self, who: str, *args: str) -> str:
        return _last_line(self.phone(who, *args).stdout)

    def s_drive(self) -> str:
        """Drive needs someone in the vehicle (protocol §12 presence): the virtual board's
        brake switch is the ``presence`` file of its state directory (docs/firmware.md)."""
        (self.board_root / "presence").write_text("1")
        try:
            return self.s_ble("alice", "drive", "on", LOCK_ID)
        finally:
            (self.board_root / "presence").unlink(missing_ok=True)

    def s_cancel(self) -> str:
        op = self.operator()
        op.cancel_key_request(self.ids["request-alice"])
        rev = op.get_lock(LOCK_ID)["revocation_version"]
        op.close()
        return f"{self.ids['request-alice']} cancelled; {LOCK_ID} revocation version now {rev}"

    def s_refused(self) -> tuple[str, dict[str, Any]]:
        done = self.phone("alice", "unlock", LOCK_ID, expect=1)
        line = _last_line(done.stderr)
        if "[REVOKED 23]" not in line:
            raise StepFailed(f"expected a REVOKED refusal, got: {line}")
        return line, {"code": "REVOKED"}

    def s_logs(self) -> str:
        out = self.phone("bob", "logs", LOCK_ID).stdout
        return "; ".join(" ".join(ln.split()) for ln in out.splitlines() if ln.strip())

    def s_show_logs(self) -> tuple[str, dict[str, Any]]:
        op = self.operator()
        items = op.logs(lock_id=LOCK_ID, limit=200)["items"]
        op.close()
        from kagiya.phone.app import EVENTS as names  # the phone app's event names
        events = [(names.get(r["event"], str(r["event"])), r["code"]) for r in items]
        if ("unlock", 23) not in events or ("unlock", 0) not in events:
            raise StepFailed(f"the operator's log lacks the unlock and the REVOKED refusal: "
                             f"{events}")
        details = [f"#{r['seq']:<3} {names.get(r['event'], r['event']):<18} "
                   f"code {r['code']:<3} user {r['user_id'] or '-'}" for r in items]
        return (f"{len(items)} verified records for {LOCK_ID}",
                {"records": len(items), "details": details})

    def s_web(self) -> tuple[str, dict[str, Any]]:
        """One-time links with which a person follows the story in a browser: the operator
        console as an admin, and each driver's My Page (docs/tutorial.md). They are on
        ``http://localhost:PORT``, where a browser's passkeys work."""
        from kagiya.server.client import OperatorClient

        web = self.url.replace("127.0.0.1", "localhost")
        op = OperatorClient.login(web, self.creds["client_id"], self.creds["client_secret"])
        try:
            links = {"console": op.invite_staff("Demo admin", "admin")["url"]}
            for who in ("alice", "bob"):
                if who in self.ids:
                    links[who] = op.my_page_invitation(self.ids[who])["url"]
        finally:
            op.close()
        self.links = links
        names = {"console": "operator console (admin)", "alice": "Alice's My Page",
                 "bob": "Bob's My Page"}
        details = [f"{names[k]:<26} {v}" for k, v in links.items()]
        return (f"{len(links)} one-time links (valid 7 days; each creates a passkey)",
                {"links": links, "details": details})

    def run(self) -> None:
        """The story, step by step (stops at the first unexpected outcome)."""
        st = self.story.step
        st("bootstrap", self.s_bootstrap)
        st("create the operator (service admin)", self.s_operator)
        st("start the key server (SQLite)", self.start_server)
        st("operator registers a partner and two users", self.s_partner_user)
        st("installer: virtual board deploy, provision, register, self-test", self.s_board_install)
        st("lock firmware on the air (virtual BLE)", self.s_lock_on_air)
        st("Alice's phone enrolls with a one-time code", lambda: self.s_enroll("alice"))
        st("operator requests a key for Alice (710-day lease)",
           lambda: self.s_key_request("alice", 710))
        st("Alice's phone downloads its key", lambda: self.s_sync("alice"))
        st("key server stopped: the vehicle is offline", self.s_stop_server)
        st("Alice unlocks over BLE (offline)", lambda: self.s_ble("alice", "unlock", LOCK_ID))
        st("Alice presses the brake pedal and enables drive (offline)", self.s_drive)
        st("Alice locks (offline)", lambda: self.s_ble("alice", "lock", LOCK_ID))
        st("key server back up", self.start_server)
        st("operator cancels Alice's key (her phone stays offline)", self.s_cancel)
        st("Bob's phone enrolls", lambda: self.s_enroll("bob"))
        st("operator requests a key for Bob", lambda: self.s_key_request("bob", 30))
        st("Bob's phone syncs (gets the revocation update)", lambda: self.s_sync("bob"))
        st("Bob's phone carries the revocation to the lock",
           lambda: self.s_ble("bob", "status", LOCK_ID))
        st("Alice's next unlock is refused with REVOKED", self.s_refused)
        st("Bob's phone fetches the lock's log and uploads it", self.s_logs)
        st("operator reads the verified log from the API", self.s_show_logs)


def print_summary(steps: list[StepResult], total: float) -> None:
    """The summary table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Kagiya demo: {sum(s.ok for s in steps)}/{len(steps)} steps ok "
                        f"in {total:.1f} s")
    table.add_column("#", justify="right")
    table.add_column("step")
    table.add_column("result")
    table.add_column("s", justify="right")
    for s in steps:
        table.add_row(str(s.number), s.title, "ok" if s.ok else "FAILED", f"{s.seconds:.2f}")
    Console().print(table)


def _serve_until_interrupted(demo: Demo, out: Callable[[str], None]) -> None:
    """``--web``: keep the key server up for the browser until Ctrl-C (or SIGTERM)."""
    out(f"the key server keeps running at {demo.url.replace('127.0.0.1', 'localhost')}: "
        "open the links above in a browser; press Ctrl-C to stop everything")
    server = demo.sup.procs.get("server")
    try:
        while server is not None and server.popen.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        out("stopping everything the demo started")
        return
    raise StepFailed("the key server exited while serving the browser links")


def run_demo(workdir: Path | None = None, *, keep: bool = False,
             report: Path | None = None, out: Callable[[str], None] = print,
             connected: bool = False, web: bool = False) -> int:
    """Run the story (``connected``: the connected-lock story, tools/demo_connected.py);
    ``web``: then print console and My Page links and keep the server up until Ctrl-C.
    Returns the exit status. Cleans up every process it started."""
    tmp = workdir is None
    work = Path(tempfile.mkdtemp(prefix="kagiya-demo-")) if workdir is None else workdir
    work.mkdir(parents=True, exist_ok=True)
    if connected:
        from kagiya.tools.demo_connected import ConnectedDemo

        demo: Demo = ConnectedDemo(work, out)
    else:
        demo = Demo(work, out)
    t0 = time.monotonic()
    ok = False
    interrupted = False

    def _term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    # SIGINT too: a parent that started us with SIGINT ignored (a background job) must not
    # make Ctrl-C a no-op.
    old = signal.signal(signal.SIGTERM, _term)
    old_int = signal.signal(signal.SIGINT, _term)
    try:
        demo.run()
        if web:
            demo.story.step("follow the story in a browser (console, My Page)", demo.s_web)
            if report is not None:  # the links, for whoever waits for them (tests)
                report.write_text(json.dumps({"ok": True, "links": demo.links,
                                              "ids": demo.ids}))
            _serve_until_interrupted(demo, out)
        ok = True
    except StepFailed:
        out(f"logs of every process: {demo.logdir}")
    except KeyboardInterrupt:
        interrupted = True
        out("interrupted: stopping everything the demo started")
    finally:
        demo.sup.stop_all()
        broker = getattr(demo, "broker", None)
        if broker is not None:
            broker.stop()
        signal.signal(signal.SIGTERM, old)
        signal.signal(signal.SIGINT, old_int)
    total = time.monotonic() - t0
    print_summary(demo.story.steps, total)
    if report is not None:
        report.write_text(json.dumps({"ok": ok, "seconds": total, "pids": demo.sup.pids,
                                      "workdir": str(work),
                                      "steps": [asdict(s) for s in demo.story.steps]}, indent=2))
    if tmp and ok and not keep:
        shutil.rmtree(work, ignore_errors=True)
    elif not ok or keep:
        out(f"work directory kept: {work}")
    return 0 if ok else (130 if interrupted else 1)


def register(parser: argparse.ArgumentParser) -> None:
    """``kagiya demo``."""
    parser.add_argument("--workdir", type=Path, help="keep everything here (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--report", type=Path, help="also write the step results as JSON")
    parser.add_argument("--connected", action="store_true",
                        help="the connected-lock story: MQTT push, SIM line (docs/uplink.md)")
    parser.add_argument("--web", action="store_true",
                        help="then print one-time console and My Page links and keep the key "
                             "server running until Ctrl-C (docs/tutorial.md)")
    parser.set_defaults(handler=lambda a: run_demo(a.workdir, keep=a.keep, report=a.report,
                                                   connected=a.connected, web=a.web))

