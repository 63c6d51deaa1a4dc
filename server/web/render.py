"""Server-rendered pages: Jinja2 templates (``server/web/templates``) in the user's language.

Every template sees ``_`` (the catalogue, :mod:`kagiya.sdk.i18n`), ``when(t)`` (a time in the
user's zone, JST by default), ``outcome(code)`` and ``code_label(code)`` (a log record's
result in words, and its code's name), ``lang`` and ``langs`` (the switch). Autoescaping is on.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from kagiya.sdk.i18n import (
    LANGUAGE_NAMES,
    LANGUAGES,
    _,
    for_request,
    format_date,
    format_time,
    language,
)
from kagiya.sdk.outcome import code_label, outcome
from kagiya.sdk.protocol import LogEvent, Permission

TEMPLATES = Path(__file__).resolve().parent / "templates"
LANG_COOKIE = "kagiya_lang"
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make form POSTs send Origin: null
}


@cache
def environment() -> Environment:
    """The Jinja2 environment (``_`` resolves the current language at render time)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(),
                      extensions=["jinja2.ext.i18n"])
    env.globals.update(_=_, when=format_time, day=format_date, langs=LANGUAGE_NAMES,
                       languages=LANGUAGES, outcome=outcome, code_label=code_label)
    return env


def request_language(request: Request) -> str:
    """The language of this request."""
    return for_request(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE),
                       request.headers.get("accept-language"))


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` in the request's language (a ``?lang=`` switch is remembered)."""
    lang = request_language(request)
    with language(lang):
        body = environment().get_template(template).render(lang=lang, path=request.url.path,
                                                           **context)
    resp = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
    if request.query_params.get("lang") == lang:
        resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
    return resp


def perm_words(bits: int) -> list[str]:
    """The permissions of a key in words (current language)."""
    return [_(str(p.name).lower()) for p in Permission if bits & p] or [_("status only")]


def event_word(event: int) -> str:
    """A usage-log event in words (current language)."""
    try:
        return _(LogEvent(event).label)
    except ValueError:
        return str(event)
