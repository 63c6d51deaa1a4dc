"""What the data-subject requests of the privacy policy (§8) keep: the requests and the
register of third-party provisions. Migration 0015.

A request belongs to one operator and, while the person's user ID exists, to that user
(``user_pk``); ``user_ref`` names the user ID and becomes its audit pseudonym when the ID is
erased, so the operator keeps the record of what was asked and answered, not who asked.
A provision record (recipient, day, fields; APPI 第29条) outlives an erasure the same way.
"""

from __future__ import annotations

from kagiya.server.models import Base
from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

RECEIVED, FULFILLED, REFUSED, WITHDRAWN = "received", "fulfilled", "refused", "withdrawn"


def _operator_fk() -> Mapped[str]:
    return mapped_column(String(40), ForeignKey("operators.id", ondelete="CASCADE"),
                         nullable=False, index=True)


class PrivacyRequest(Base):
    """A data-subject request: disclosure, correction, stop-use or erasure."""

    __tablename__ = "privacy_requests"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    operator_id: Mapped[str] = _operator_fk()
    user_pk: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.pk", ondelete="SET NULL"), nullable=True, index=True)
    user_ref: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=RECEIVED)
    verified_by: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    due_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    answered_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    answer: Mapped[str] = mapped_column(Text, nullable=False, default="")


class Provision(Base):
    """One provision of a user's data to a third party: who received which fields when."""

    __tablename__ = "privacy_provisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    operator_id: Mapped[str] = _operator_fk()
    user_ref: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    recipient: Mapped[str] = mapped_column(String(100), nullable=False)
    purpose: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    fields: Mapped[str] = mapped_column(Text, nullable=False)  # JSON list of field names
    provided_on: Mapped[str] = mapped_column(String(10), nullable=False)  # YYYY-MM-DD (JST)
    recorded_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
    recorded_by: Mapped[str] = mapped_column(String(80), nullable=False)
