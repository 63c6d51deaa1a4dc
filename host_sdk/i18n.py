"""One message catalogue for every sentence people read: Japanese and English (gettext / Babel).

The English sentence is the gettext ``msgid``; ``host_sdk/locale/<lang>/LC_MESSAGES/kagiya.po``
holds the translations (``ja`` complete, ``en`` identity). Catalogues are read with Babel and
compiled to gettext's binary form in memory on first use, so no build step is needed.

- ``_("…")`` translates into the *current* language (a context variable: the CLI sets it
  from ``LANG``, a web request from ``Accept-Language`` or the user's switch).
- ``N_("…")`` only marks a sentence for extraction (tables translated later, e.g. refusals).
- Placeholders are ``{name}`` (``python-brace-format``): ``_("key for {lock}").format(lock=…)``.
- Times are shown in the user's time zone, Japan Standard Time unless set otherwise
  (``KAGIYA_TZ``), never bare UTC: :func:`format_time`.

``tests/sdk/test_i18n.py`` fails when a catalogue misses a message used in the code.
"""

from __future__ import annotations

import contextlib
import gettext as _gettext
import io
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LANGUAGES = ("ja", "en")
WEB_DEFAULT = "ja"  # the service is sold in Japan: a browser that says nothing gets Japanese
CLI_DEFAULT = "en"  # LANG=C / unset: the msgid language (terminals without Japanese fonts)
DEFAULT_TZ = "Asia/Tokyo"
DOMAIN = "kagiya"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGE_NAMES = {"ja": "日本語", "en": "English"}

_current: ContextVar[str] = ContextVar("kagiya_language", default=CLI_DEFAULT)


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue without translating it now."""
    return message


def catalogue_path(lang: str) -> Path:
    """The ``.po`` file of ``lang``."""
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(lang: str) -> _gettext.NullTranslations:
    """The gettext translations of ``lang`` (an unknown language: the English msgids)."""
    if lang not in LANGUAGES:
        return _gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with catalogue_path(lang).open("rb") as fh:
        catalog = read_po(fh, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return _gettext.GNUTranslations(buf)


def current_language() -> str:
    """The language of this context (thread, task or request)."""
    return _current.get()


def set_language(lang: str) -> str:
    """Make ``lang`` (normalised to one of :data:`LANGUAGES`) the current language."""
    lang = normalise(lang) or CLI_DEFAULT
    _current.set(lang)
    return lang


@contextlib.contextmanager
def language(lang: str) -> Iterator[str]:
    """``with language("ja"):`` — translate into ``lang`` inside the block."""
    token = _current.set(normalise(lang) or CLI_DEFAULT)
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def _(message: str) -> str:
    """``message`` (an English msgid) in the current language."""
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """Plural form of ``singular``/``plural`` for ``n`` in the current language."""
    return translations(_current.get()).ngettext(singular, plural, n)


def translate(lang: str, message: str) -> str:
    """``message`` in ``lang`` regardless of the current language."""
    return translations(normalise(lang) or CLI_DEFAULT).gettext(message)


def normalise(tag: str | None) -> str | None:
    """``"ja-JP"``, ``"ja_JP.UTF-8"``, ``"EN"`` → ``"ja"`` / ``"en"``; anything else → None."""
    if not tag:
        return None
    base = tag.strip().split(".")[0].replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


def negotiate(accept_language: str | None, default: str = WEB_DEFAULT) -> str:
    """The best of :data:`LANGUAGES` for an HTTP ``Accept-Language`` header (RFC 9110 §12.5.4)."""
    best: tuple[float, str] | None = None
    for i, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _sep, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = normalise(tag)
        if lang and q > 0 and (best is None or q > best[0]):
            best = (q - i * 1e-6, lang)  # equal q: the first listed wins
    return best[1] if best else default


def for_request(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """A web request's language: ``?lang=``, then the switch's cookie, then the browser's."""
    return normalise(query) or normalise(cookie) or negotiate(accept_language)


def from_environment(env: Mapping[str, str] | None = None) -> str:
    """The CLI's language: ``KAGIYA_LANG``, then POSIX ``LANGUAGE``, ``LC_ALL``,
    ``LC_MESSAGES``, ``LANG`` (the first that names ja or en); ``C``/unset → English."""
    env = os.environ if env is None else env
    for var in ("KAGIYA_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var, "")
        for tag in value.split(":"):
            lang = normalise(tag)
            if lang:
                return lang
        if value and var != "LANGUAGE":
            break  # a set LC_ALL/LC_MESSAGES/LANG that is not ja/en decides: English
    return CLI_DEFAULT


def user_zone(name: str | None = None) -> ZoneInfo:
    """The user's time zone: ``name``, else ``$KAGIYA_TZ``, else Japan Standard Time."""
    for candidate in (name, os.environ.get("KAGIYA_TZ"), DEFAULT_TZ):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo(DEFAULT_TZ)


def format_time(t: float, zone: ZoneInfo | str | None = None, *, seconds: bool = False) -> str:
    """Unix seconds as ``2026-12-03 09:30 JST`` in the user's zone (never bare UTC)."""
    tz = zone if isinstance(zone, ZoneInfo) else user_zone(zone)
    dt = datetime.fromtimestamp(t, tz)
    return dt.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def format_date(t: float, zone: ZoneInfo | str | None = None) -> str:
    """Unix seconds as a date in the user's zone (``2026-12-03``)."""
    tz = zone if isinstance(zone, ZoneInfo) else user_zone(zone)
    return datetime.fromtimestamp(t, tz).strftime("%Y-%m-%d")
