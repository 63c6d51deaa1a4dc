"""The message catalogue: complete in ja and en, language negotiation, local times."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from kagiya.sdk import catalogue, i18n
from kagiya.sdk.enrollment import enrollment_link, parse_enrollment


def test_every_message_in_the_code_is_translated_in_every_language() -> None:
    messages = catalogue.all_messages()
    assert len(messages) > 150  # the extraction really found the sources
    for lang in i18n.LANGUAGES:
        gaps = catalogue.missing(lang, messages)
        assert not gaps, f"{lang} catalogue misses {len(gaps)}: {gaps[:5]} (run `make messages`)"


def test_a_new_sentence_without_a_translation_is_caught() -> None:
    new = "A sentence nobody translated yet."
    assert catalogue.missing("ja", [new]) == [new]
    assert catalogue.missing("ja", ["{n} new key(s)"]) == []


def test_placeholders_survive_translation() -> None:
    """A ja string must use exactly the ``{names}`` of its msgid (else ``.format`` breaks)."""
    field = re.compile(r"\{(\w*)\}")
    for msg in catalogue.all_messages():
        msgid = msg[0] if isinstance(msg, tuple) else msg
        translated = i18n.translate("ja", msgid)
        assert sorted(field.findall(translated)) == sorted(field.findall(msgid)), msgid


def test_current_language_and_switch() -> None:
    msg = "Cannot reach the vehicle. Is it in range, and is Bluetooth on?"
    with i18n.language("ja"):
        assert i18n._(msg).startswith("車両に接続できません")
        with i18n.language("en"):
            assert i18n._(msg) == msg
        assert i18n.current_language() == "ja"
    assert i18n.translate("fr", msg) == msg  # unknown: the English msgid


@pytest.mark.parametrize(("header", "want"), [
    (None, "ja"), ("", "ja"), ("en-US,en;q=0.9", "en"), ("ja-JP", "ja"),
    ("fr-FR, en;q=0.5, ja;q=0.8", "ja"), ("de, fr", "ja"), ("en;q=0, ja;q=0.1", "ja"),
    ("en;q=bogus", "ja"), ("EN", "en"),
])
def test_accept_language(header: str | None, want: str) -> None:
    assert i18n.negotiate(header) == want


@pytest.mark.parametrize(("env", "want"), [
    ({}, "en"), ({"LANG": "C.UTF-8"}, "en"), ({"LANG": "ja_JP.UTF-8"}, "ja"),
    ({"LANG": "en_US.UTF-8", "LC_ALL": "ja_JP.UTF-8"}, "ja"),
    ({"LANGUAGE": "fr:ja", "LANG": "fr_FR"}, "ja"), ({"KAGIYA_LANG": "en", "LANG": "ja_JP"}, "en"),
    ({"LC_ALL": "de_DE.UTF-8", "LANG": "ja_JP.UTF-8"}, "en"),
])
def test_cli_language_from_environment(env: dict[str, str], want: str) -> None:
    assert i18n.from_environment(env) == want


def test_times_are_jst_by_default_never_bare_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAGIYA_TZ", raising=False)
    assert i18n.format_time(0) == "1970-01-01 09:00 JST"
    monkeypatch.setenv("KAGIYA_TZ", "Europe/London")
    assert i18n.format_time(0) == "1970-01-01 01:00 BST"  # 1970: British Standard Time
    monkeypatch.setenv("KAGIYA_TZ", "Not/AZone")
    assert i18n.format_time(0).endswith("JST")


def test_enrollment_link_carries_the_server() -> None:
    link = enrollment_link("https://keys.example.jp/kagiya/", "ABCD-EFGH-JK12")
    assert link.startswith("kagiya://enroll?")
    assert parse_enrollment(link) == ("https://keys.example.jp/kagiya", "ABCD-EFGH-JK12")
    assert parse_enrollment("  abcd-efgh-jk12 ") == (None, "ABCD-EFGH-JK12")
    for bad in ("", "ABCD", "kagiya://enroll?code=ABCD-EFGH-JK12",
                "kagiya://enroll?server=ftp%3A%2F%2Fx&code=ABCD-EFGH-JK12",
                "kagiya://enroll?server=https%3A%2F%2Fa&server=https%3A%2F%2Fb&code=ABCD-EFGH-JK12",
                "kagiya://enroll?server=https%3A%2F%2Fa&code=ABCD-EFGH-JK12&x=1",
                "kagiya://enroll?" + "&".join(["a=1"] * 50)):
        with pytest.raises(ValueError):
            parse_enrollment(bad)
    with pytest.raises(ValueError):
        enrollment_link("javascript:alert(1)", "ABCD-EFGH-JK12")


def test_make_messages_twice_changes_nothing(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """`make messages` with nothing new leaves every file as it was (Babel stamps each run's
    time into POT-Creation-Date: a file that differs only there is not rewritten)."""
    locale = tmp_path / "locale"
    shutil.copytree(i18n.LOCALE_DIR, locale)
    monkeypatch.setattr(catalogue, "POT", locale / catalogue.POT.name)
    monkeypatch.setattr(catalogue, "catalogue_path",
                        lambda lang: locale / lang / "LC_MESSAGES" / f"{i18n.DOMAIN}.po")
    catalogue.update()
    files = sorted(p for p in locale.rglob("*") if p.is_file())
    for p in files:
        os.utime(p, ns=(10**18, 10**18))  # a rewrite would show in the mtime
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files}
    catalogue.update()
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in files} == before
    pot = catalogue.POT.read_bytes()
    restamped = re.sub(rb'POT-Creation-Date: [^"]*', b"POT-Creation-Date: 2020-01-01 00:00+0000",
                       pot)
    assert not catalogue._write_if_changed(catalogue.POT, restamped)  # only the date differs
    assert catalogue._write_if_changed(catalogue.POT, restamped + b"\n")
