"""Keeping the message catalogue complete: extract every msgid, update, check (Babel).

``make messages`` (``python -m kagiya.sdk.catalogue update``) extracts the sentences marked
with ``_()``, ``N_()``, ``ngettext()``, ``translate(lang, …)`` in the Python sources and
``{{ _("…") }}`` in the Jinja2 templates, writes ``locale/kagiya.pot`` and merges it into
each language's ``.po`` (new messages arrive untranslated, gone ones are dropped).
``python -m kagiya.sdk.catalogue check`` lists what a catalogue misses; the test suite runs
the same check, so a sentence without a Japanese translation fails the build.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from kagiya.sdk.i18n import DOMAIN, LANGUAGES, LOCALE_DIR, catalogue_path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("host_sdk", "mobile_sim", "server", "tools")
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2), "translate": (2,)}
POT = LOCALE_DIR / f"{DOMAIN}.pot"

Message = str | tuple[str, str]  # a msgid, or (singular, plural)


def _method_map() -> list[tuple[str, str]]:
    return [("**.py", "python"), ("**/templates/**.html", "jinja2")]


def extract(extra: Iterable[Message] = ()) -> dict[Message, list[tuple[str, int]]]:
    """Every msgid in the sources (plus ``extra``) with where it is used."""
    from babel.messages.extract import extract_from_dir

    found: dict[Message, list[tuple[str, int]]] = {}
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    for folder in SOURCE_DIRS:
        for filename, lineno, message, _comments, _ctx in extract_from_dir(
            ROOT / folder, method_map=_method_map(), options_map=options, keywords=KEYWORDS
        ):
            msg = _as_message(message)
            if msg:
                found.setdefault(msg, []).append((f"{folder}/{filename}", lineno))
    for msg in extra:
        found.setdefault(msg, [])
    return found


def _as_message(message: object) -> Message | None:
    if isinstance(message, str):
        return message or None
    if isinstance(message, tuple):
        parts = [m for m in message if isinstance(m, str)]
        if len(parts) >= 2:
            return (parts[0], parts[1])
        if parts:
            return parts[0]
    return None


def protocol_sentences() -> list[str]:
    """Sentences people read that are defined as data in the protocol definition
    (:mod:`kagiya.sdk.protocol`): every error code's remedy, log event labels, permissions."""
    from kagiya.sdk.protocol import UNKNOWN_CODE_REMEDY, ErrorCode, LogEvent, Permission

    return ([c.remedy for c in ErrorCode] + [UNKNOWN_CODE_REMEDY]
            + [e.label for e in LogEvent] + [str(p.name).lower() for p in Permission])


def missing(lang: str, messages: Iterable[Message]) -> list[Message]:
    """Messages of ``messages`` that ``lang``'s catalogue lacks or leaves untranslated."""
    from babel.messages.pofile import read_po

    with catalogue_path(lang).open("rb") as fh:
        cat = read_po(fh, locale=lang, domain=DOMAIN)
    out: list[Message] = []
    for msg in messages:
        key = msg[0] if isinstance(msg, tuple) else msg
        entry = cat.get(key)
        if entry is None or entry.fuzzy:
            out.append(msg)
            continue
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if not all(strings):
            out.append(msg)
    return out


def all_messages() -> dict[Message, list[tuple[str, int]]]:
    """What the catalogues must cover."""
    return extract(protocol_sentences())


def update() -> None:
    """Write the template and merge it into every language's catalogue."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po, write_po

    template = Catalog(domain=DOMAIN, project="Kagiya", charset="utf-8")
    for msg, where in sorted(all_messages().items(), key=lambda kv: str(kv[0])):
        flags = ["python-brace-format"] if "{" in str(msg) else []
        template.add(msg, locations=where, flags=flags)
    POT.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    write_po(buf, template, sort_output=True, width=100, include_lineno=False)
    _write_if_changed(POT, buf.getvalue())
    for lang in LANGUAGES:
        path = catalogue_path(lang)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open("rb") as fh:
                cat = read_po(fh, locale=lang, domain=DOMAIN)
        else:
            cat = Catalog(locale=lang, domain=DOMAIN, project="Kagiya", charset="utf-8")
        for tmpl in template:  # a sentence that became (or stopped being) plural starts over
            old = cat.get(tmpl.id if isinstance(tmpl.id, str) else tmpl.id[0])
            if tmpl.id and old is not None and old.pluralizable != tmpl.pluralizable:
                cat.delete(old.id if isinstance(old.id, str) else old.id[0])
        cat.update(template, no_fuzzy_matching=True)
        if lang == "en":  # the msgids are English: the English catalogue is the identity
            for entry in cat:
                if entry.id and not (entry.string if not isinstance(entry.string, tuple)
                                     else all(entry.string)):
                    entry.string = entry.id if isinstance(entry.id, str) else tuple(entry.id)
        cat.obsolete.clear()
        buf = io.BytesIO()
        write_po(buf, cat, sort_output=True, width=100, include_previous=False,
                 include_lineno=False)
        _write_if_changed(path, buf.getvalue())


_CREATED = re.compile(rb'^"POT-Creation-Date: [^"]*"$', re.M)


def _write_if_changed(path: Path, text: bytes) -> bool:
    """Write ``text`` unless the file holds it already but for its POT-Creation-Date (Babel
    stamps the time of each run): ``make messages`` with nothing new leaves every file as it
    was. Returns whether it wrote."""
    if path.exists():
        old = path.read_bytes()
        if _CREATED.sub(b"", old) == _CREATED.sub(b"", text):
            return False
    path.write_bytes(text)
    return True


def _report(langs: Iterable[str]) -> Iterator[str]:
    messages = list(all_messages())
    for lang in langs:
        for msg in missing(lang, messages):
            yield f"{lang}: {msg!r}"


def main(argv: list[str] | None = None) -> int:
    """``python -m kagiya.sdk.catalogue update|check``."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["update"]:
        update()
        return 0
    if args[:1] == ["check"]:
        lines = list(_report(LANGUAGES))
        for line in lines:
            print(line)
        print(f"{len(lines)} message(s) missing")
        return 1 if lines else 0
    print("usage: python -m kagiya.sdk.catalogue update|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
