"""Notices the operator publishes to its drivers, and what a driver keeps on My Page.

Three kinds (contract portal 第9条6項: the operator informs through the service's notice
function):

- ``notice``: an inbox item, for every driver of the operator or for one user ID, shown from
  ``starts_at`` (publication can be scheduled).
- ``maintenance``: a planned interruption (第7条) from ``starts_at`` to ``ends_at``; My Page
  shows it as a banner from its publication until the window ends (announced before, and
  "under way" during it), and in the inbox.
- ``terms``: a version of the My Page terms with its effective date ``starts_at`` (第18条2項:
  the change, its content and when it takes effect are announced on the service). The version
  in force is the newest whose date has come (第18条3項: a change takes effect at that date,
  no new consent is asked); an announced version is a banner until then. A driver agrees to
  the version in force when they register (第4条1項); that acceptance is kept.

Also the driver's contact details (第9条5項: the driver reports changes of contact). Tables:
migration 0014. Operator API schemas live here too (``/v1/notices``, docs/openapi.json).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from kagiya.sdk.i18n import current_language, user_zone
from kagiya.server.models import Base, User
from kagiya.server.problems import ApiError, not_found
from kagiya.server.secrets_store import new_id
from kagiya.server.services.context import Ctx
from kagiya.server.services.lease import day_start
from kagiya.server.services.lookup import get_user
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    and_,
    exists,
    or_,
    select,
)
from sqlalchemy import Text as SqlText
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

NOTICE, MAINTENANCE, TERMS = "notice", "maintenance", "terms"
KINDS = (NOTICE, MAINTENANCE, TERMS)
LIST_LIMIT = 100


class Notice(Base):
    """One published notice, maintenance window or terms version of an operator."""

    __tablename__ = "web_notices"
    __table_args__ = (UniqueConstraint("operator_id", "kind", "version",
                                       name="uq_web_notices_version"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    operator_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("operators.id", ondelete="CASCADE"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    user_pk: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.pk", ondelete="CASCADE"), nullable=True, index=True)
    title_ja: Mapped[str] = mapped_column(String(200), nullable=False)
    title_en: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    body_ja: Mapped[str] = mapped_column(SqlText, nullable=False)
    body_en: Mapped[str] = mapped_column(SqlText, nullable=False, default="")
    version: Mapped[str | None] = mapped_column(String(40), nullable=True)
    starts_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    ends_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    published_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    withdrawn_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    def title(self) -> str:
        """The title in the current language (Japanese when there is no English one)."""
        return self.title_en if current_language() == "en" and self.title_en else self.title_ja

    def body(self) -> str:
        """The text in the current language (Japanese when there is no English one)."""
        return self.body_en if current_language() == "en" and self.body_en else self.body_ja


class NoticeRead(Base):
    """A driver opened a notice."""

    __tablename__ = "web_notice_reads"
    notice_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("web_notices.id", ondelete="CASCADE"), primary_key=True)
    user_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.pk", ondelete="CASCADE"), primary_key=True, index=True)
    read_at: Mapped[int] = mapped_column(BigInteger, nullable=False)


class TermsAcceptance(Base):
    """The terms version a driver agreed to (at registration, 第4条1項)."""

    __tablename__ = "web_terms_acceptances"
    user_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.pk", ondelete="CASCADE"), primary_key=True)
    notice_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("web_notices.id", ondelete="CASCADE"), primary_key=True)
    accepted_at: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Contact(Base):
    """A driver's contact details, kept up to date by the driver (第9条5項)."""

    __tablename__ = "web_contacts"
    user_pk: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.pk", ondelete="CASCADE"), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), nullable=False, default="")
    phone: Mapped[str] = mapped_column(String(32), nullable=False, default="")
    updated_at: Mapped[int] = mapped_column(BigInteger, nullable=False)


# -- the operator API's bodies ----------------------------------------------------------------

_LINE = r"^[^\x00-\x1f\x7f]*$"  # one line, no control characters
_TEXT = r"^[^\x00-\x08\x0b-\x1f\x7f]*$"  # line breaks and tabs allowed


class Title(BaseModel):
    """A title in Japanese (required: the service is Japan-only) and English (optional)."""

    model_config = ConfigDict(extra="forbid")
    ja: Annotated[str, Field(min_length=1, max_length=200, pattern=_LINE)]
    en: Annotated[str, Field(max_length=200, pattern=_LINE)] = ""


class Text(BaseModel):
    """A text in Japanese (required) and English (optional)."""

    model_config = ConfigDict(extra="forbid")
    ja: Annotated[str, Field(min_length=1, max_length=20000, pattern=_TEXT)]
    en: Annotated[str, Field(max_length=20000, pattern=_TEXT)] = ""


class NoticeIn(BaseModel):
    """A notice, maintenance window or terms version to publish."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["notice", "maintenance", "terms"]
    title: Title
    body: Text
    user_id: Annotated[str | None, Field(pattern=r"^[!-~]{1,64}$",
                                         description="only this driver (kind notice)")] = None
    starts_at: Annotated[int | None, Field(
        ge=0, le=4294967295,
        description="notice: shown from; maintenance: window start; terms: effective date "
                    "(default now)")] = None
    ends_at: Annotated[int | None, Field(ge=0, le=4294967295,
                                         description="maintenance: window end")] = None
    version: Annotated[str | None, Field(min_length=1, max_length=40,
                                         pattern=r"^[!-~]+$",
                                         description="terms: its version")] = None


class NoticeOut(BaseModel):
    """A published notice."""

    notice_id: str
    kind: str
    title: dict[str, str]
    body: dict[str, str]
    user_id: str | None
    starts_at: int
    ends_at: int | None
    version: str | None
    published_at: int
    withdrawn_at: int | None


class NoticeList(BaseModel):
    """The operator's notices, newest first (at most 100)."""

    items: list[NoticeOut]


def _out(n: Notice, user_id: str | None) -> NoticeOut:
    return NoticeOut(notice_id=n.id, kind=n.kind, title={"ja": n.title_ja, "en": n.title_en},
                     body={"ja": n.body_ja, "en": n.body_en}, user_id=user_id,
                     starts_at=n.starts_at, ends_at=n.ends_at, version=n.version,
                     published_at=n.published_at, withdrawn_at=n.withdrawn_at)


def _user_id(s: Session, n: Notice) -> str | None:
    return s.scalar(select(User.user_id).where(User.pk == n.user_pk)) if n.user_pk else None


# -- the operator's side ----------------------------------------------------------------------

def publish(c: Ctx, body: NoticeIn) -> NoticeOut:
    """Publish a notice (422 for a window or version that does not fit its kind, 409
    ``terms-version-exists``, 404 for another operator's user ID)."""
    starts = body.starts_at if body.starts_at is not None else c.now
    if body.kind != TERMS and body.version is not None:
        raise ApiError(422, "invalid-notice", "only terms have a version")
    if body.kind != MAINTENANCE and body.ends_at is not None:
        raise ApiError(422, "invalid-notice", "only a maintenance window has an end")
    if body.kind != NOTICE and body.user_id is not None:
        raise ApiError(422, "invalid-notice", "maintenance and terms are for every driver")
    if body.kind == MAINTENANCE and (body.ends_at is None or body.ends_at <= starts):
        raise ApiError(422, "invalid-window", "a maintenance window ends after it starts")
    if body.kind == TERMS:
        if body.version is None:
            raise ApiError(422, "invalid-notice", "terms need a version")
        today = datetime.fromtimestamp(c.now, user_zone()).date()
        if starts < day_start(today):  # announced with their date (第18条2項): today at most
            raise ApiError(422, "terms-retroactive",
                           "terms take effect at an announced date: today or later")
        if c.s.scalar(select(Notice.id).where(Notice.operator_id == c.operator_id,
                                              Notice.kind == TERMS,
                                              Notice.version == body.version)) is not None:
            raise ApiError(409, "terms-version-exists", "this terms version was published")
    user_pk = get_user(c, body.user_id).pk if body.user_id is not None else None
    n = Notice(id=new_id("nt"), operator_id=c.operator_id, kind=body.kind, user_pk=user_pk,
               title_ja=body.title.ja, title_en=body.title.en, body_ja=body.body.ja,
               body_en=body.body.en, version=body.version, starts_at=starts,
               ends_at=body.ends_at, published_at=c.now)
    c.s.add(n)
    c.s.flush()
    c.audit(f"notice.publish.{body.kind}", n.id, version=body.version, user=body.user_id)
    return _out(n, body.user_id)


def listing(c: Ctx, kind: str | None = None) -> NoticeList:
    """The operator's notices, newest first."""
    q = select(Notice, User.user_id).outerjoin(User, User.pk == Notice.user_pk).where(
        Notice.operator_id == c.operator_id)
    if kind:
        q = q.where(Notice.kind == kind)
    rows = c.s.execute(q.order_by(Notice.published_at.desc(), Notice.starts_at.desc(),
                                   Notice.id).limit(LIST_LIMIT))
    return NoticeList(items=[_out(n, uid) for n, uid in rows])


def withdraw(c: Ctx, notice_id: str) -> NoticeOut:
    """Withdraw a notice (drivers no longer see it); a terms version in force or the one a
    driver agreed to stays (409 ``terms-in-force``)."""
    n = c.s.scalar(select(Notice).where(Notice.id == notice_id,
                                        Notice.operator_id == c.operator_id).with_for_update())
    if n is None:
        raise not_found("notice")
    if n.withdrawn_at is None:
        if n.kind == TERMS and n.starts_at <= c.now:
            raise ApiError(409, "terms-in-force",
                           "terms in force are replaced by a new version, not withdrawn")
        n.withdrawn_at = c.now
        c.audit("notice.withdraw", n.id)
    return _out(n, _user_id(c.s, n))


# -- the driver's side ------------------------------------------------------------------------

def _for(user: User) -> ColumnElement[bool]:
    return and_(Notice.operator_id == user.operator_id, Notice.withdrawn_at.is_(None),
                or_(Notice.user_pk.is_(None), Notice.user_pk == user.pk))


@dataclass
class Item:
    """A notice as a driver sees it."""

    notice: Notice
    read: bool


@dataclass
class Inbox:
    """My Page's notices: the inbox, the banners and the terms."""

    items: list[Item]
    unread: int
    maintenance: list[Notice]  # announced or under way
    terms: Notice | None  # in force
    upcoming_terms: list[Notice]  # announced, not yet in force
    agreed: str | None  # the version the driver agreed to


def terms_in_force(s: Session, operator_id: str, now: int) -> Notice | None:
    """The newest terms version whose effective date has come."""
    return s.scalar(select(Notice).where(
        Notice.operator_id == operator_id, Notice.kind == TERMS, Notice.withdrawn_at.is_(None),
        Notice.starts_at <= now).order_by(Notice.starts_at.desc(), Notice.published_at.desc())
        .limit(1))


def inbox(s: Session, user_pk: int, now: int) -> Inbox:
    """What the driver ``user_pk`` is told."""
    user = s.get(User, user_pk)
    assert user is not None
    read = exists(select(NoticeRead.notice_id).where(NoticeRead.notice_id == Notice.id,
                                                     NoticeRead.user_pk == user_pk))
    rows = s.execute(select(Notice, read).where(
        _for(user), or_(Notice.kind != NOTICE, Notice.starts_at <= now))
        .order_by(Notice.published_at.desc(), Notice.id).limit(LIST_LIMIT)).all()
    items = [Item(n, bool(r)) for n, r in rows]
    agreed = s.scalar(select(Notice.version).join(
        TermsAcceptance, TermsAcceptance.notice_id == Notice.id).where(
        TermsAcceptance.user_pk == user_pk).order_by(Notice.starts_at.desc()).limit(1))
    return Inbox(
        items=items, unread=sum(not i.read for i in items),
        maintenance=sorted((i.notice for i in items if i.notice.kind == MAINTENANCE
                            and (i.notice.ends_at or 0) > now), key=lambda n: n.starts_at),
        terms=terms_in_force(s, user.operator_id, now),
        upcoming_terms=sorted((i.notice for i in items if i.notice.kind == TERMS
                               and i.notice.starts_at > now), key=lambda n: n.starts_at),
        agreed=agreed)


def public_maintenance(s: Session, operator_id: str | None, now: int) -> list[Notice]:
    """The operator's maintenance windows announced or under way (第7条), for the pages a
    driver sees before signing in and for the phone app: every driver's, never a personal
    notice; empty for an unknown operator."""
    if not operator_id or len(operator_id) > 40:
        return []
    return list(s.scalars(select(Notice).where(
        Notice.operator_id == operator_id, Notice.kind == MAINTENANCE,
        Notice.user_pk.is_(None), Notice.withdrawn_at.is_(None), Notice.published_at <= now,
        Notice.ends_at > now).order_by(Notice.starts_at).limit(LIST_LIMIT)))


def open_notice(s: Session, user_pk: int, notice_id: str, now: int) -> Notice | None:
    """One of the driver's notices, marked read (None when it is not theirs)."""
    user = s.get(User, user_pk)
    if user is None or len(notice_id) > 40:
        return None
    n = s.scalar(select(Notice).where(Notice.id == notice_id, _for(user)))
    if n is None or (n.kind == NOTICE and n.starts_at > now):
        return None
    if s.get(NoticeRead, (notice_id, user_pk)) is None:
        s.add(NoticeRead(notice_id=notice_id, user_pk=user_pk, read_at=now))
    return n


def accept_terms(s: Session, user_pk: int, operator_id: str, now: int) -> str | None:
    """Record that the registering driver agreed to the terms in force; their version."""
    terms = terms_in_force(s, operator_id, now)
    if terms is None:
        return None
    if s.get(TermsAcceptance, (user_pk, terms.id)) is None:
        s.add(TermsAcceptance(user_pk=user_pk, notice_id=terms.id, accepted_at=now))
    return terms.version


def contact_of(s: Session, user_pk: int) -> Contact | None:
    """The driver's contact details, if they gave any."""
    return s.get(Contact, user_pk)
