"""What the installer sees: rich progress and one line per action, or JSON for scripts.

With ``--json`` nothing but a single JSON document goes to stdout at the end:
``{"ok": true, "steps": {"deploy": {...}, ...}}`` or ``{"ok": false, "error": …}``; the
progress lines (each key server call, each finished step) then go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kagiya.tools.install.errors import InstallError
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn


class Reporter:
    """Collects step results; prints them for people or as JSON."""

    def __init__(self, *, as_json: bool = False, console: Console | None = None) -> None:
        self.as_json = as_json
        self.console = console or Console(stderr=as_json, highlight=False, soft_wrap=True)
        self.steps: dict[str, dict[str, Any]] = {}

    def say(self, message: str) -> None:
        """One line about what is being done or was done: on stdout for people, on stderr
        in JSON mode (stdout then carries only the JSON document)."""
        self.console.print(message)

    def done(self, step: str, result: dict[str, Any], summary: str) -> None:
        """Record a finished step and print its one-line summary."""
        self.steps[step] = result
        self.say(f"[green]✓[/green] {step}: {summary}")

    def warn(self, step: str, message: str) -> None:
        """Record a step left out on purpose and warn about it (stderr in JSON mode too)."""
        self.steps[step] = {"skipped": True, "warning": message}
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"[yellow]! warning:[/yellow] {message}")

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """A byte progress bar; yields ``advance(n)``. Silent in JSON mode."""
        if self.as_json or total <= 0:
            yield lambda n: None
            return
        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                      TimeRemainingColumn(), console=self.console, transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task, n)

    def finish(self) -> int:
        """Print the final JSON document (JSON mode) and return exit status 0."""
        if self.as_json:
            print(json.dumps({"ok": True, "steps": self.steps}, sort_keys=True))
        return 0

    def fail(self, err: InstallError) -> int:
        """Print the failure with its hint and return the step's non-zero exit status."""
        if self.as_json:
            print(json.dumps({"ok": False, **err.as_dict(), "steps": self.steps},
                             sort_keys=True))
        else:
            err_console = Console(stderr=True, highlight=False, soft_wrap=True)
            err_console.print(f"[red]✗ error ({err.code}):[/red] {err.message}")
            if err.hint:
                err_console.print(f"  → {err.hint}")
        sys.stdout.flush()
        return err.exit_status
