"""My Page: the operator's notices, maintenance windows and terms versions, which notices a
driver read, the terms version a driver agreed to, a driver's contact details

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _user_fk(primary: bool = False, index: bool = False) -> sa.Column:
    return sa.Column("user_pk", sa.Integer, sa.ForeignKey("users.pk", ondelete="CASCADE"),
                     nullable=False, primary_key=primary, index=index)


def _notice_fk() -> sa.Column:
    return sa.Column("notice_id", sa.String(40),
                     sa.ForeignKey("web_notices.id", ondelete="CASCADE"), primary_key=True)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "web_notices",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("operator_id", sa.String(40),
                  sa.ForeignKey("operators.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("user_pk", sa.Integer, sa.ForeignKey("users.pk", ondelete="CASCADE"),
                  nullable=True, index=True),
        sa.Column("title_ja", sa.String(200), nullable=False),
        sa.Column("title_en", sa.String(200), nullable=False),
        sa.Column("body_ja", sa.Text, nullable=False),
        sa.Column("body_en", sa.Text, nullable=False),
        sa.Column("version", sa.String(40), nullable=True),
        sa.Column("starts_at", sa.BigInteger, nullable=False),
        sa.Column("ends_at", sa.BigInteger, nullable=True),
        sa.Column("published_at", sa.BigInteger, nullable=False),
        sa.Column("withdrawn_at", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("operator_id", "kind", "version", name="uq_web_notices_version"),
    )
    op.create_table(
        "web_notice_reads",
        _notice_fk(),
        _user_fk(primary=True, index=True),
        sa.Column("read_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "web_terms_acceptances",
        _user_fk(primary=True),
        _notice_fk(),
        sa.Column("accepted_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "web_contacts",
        _user_fk(primary=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    """Revert this revision."""
    for table in ("web_contacts", "web_terms_acceptances", "web_notice_reads", "web_notices"):
        op.drop_table(table)
