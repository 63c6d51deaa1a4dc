"""data-subject requests (privacy policy §8) and the register of third-party provisions

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _operator_fk() -> sa.Column:
    return sa.Column("operator_id", sa.String(40),
                     sa.ForeignKey("operators.id", ondelete="CASCADE"), nullable=False,
                     index=True)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "privacy_requests",
        sa.Column("id", sa.String(40), primary_key=True),
        _operator_fk(),
        sa.Column("user_pk", sa.Integer, sa.ForeignKey("users.pk", ondelete="SET NULL"),
                  nullable=True, index=True),
        sa.Column("user_ref", sa.String(64), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("verified_by", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("due_at", sa.BigInteger, nullable=False),
        sa.Column("answered_at", sa.BigInteger, nullable=True),
        sa.Column("answered_by", sa.String(80), nullable=True),
        sa.Column("answer", sa.Text, nullable=False),
    )
    op.create_table(
        "privacy_provisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _operator_fk(),
        sa.Column("user_ref", sa.String(64), nullable=False, index=True),
        sa.Column("recipient", sa.String(100), nullable=False),
        sa.Column("purpose", sa.String(200), nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("provided_on", sa.String(10), nullable=False),
        sa.Column("recorded_at", sa.BigInteger, nullable=False),
        sa.Column("recorded_by", sa.String(80), nullable=False),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("privacy_provisions")
    op.drop_table("privacy_requests")
