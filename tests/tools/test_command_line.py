"""The ``kagiya`` command line as installers use it: version, usage errors per sub-command."""

from __future__ import annotations

from importlib import metadata

import pytest
from kagiya.tools.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("--version", "-V"):
        with pytest.raises(SystemExit) as done:
            main([flag])
        assert done.value.code == 0
        assert capsys.readouterr().out.strip() == f"kagiya {metadata.version('kagiya')}"


@pytest.mark.parametrize("argv, usage", [
    (["install", "deploy", "--bogus"], "usage: kagiya install deploy"),
    (["phone", "keys", "--bogus"], "usage: kagiya phone keys"),
    (["lock", "sim", "--bogus"], "usage: kagiya lock sim"),
    (["--bogus"], "usage: kagiya [-h]"),
])
def test_a_bad_flag_shows_that_subcommands_usage(argv: list[str], usage: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage)
    assert "unrecognized arguments: --bogus" in err
