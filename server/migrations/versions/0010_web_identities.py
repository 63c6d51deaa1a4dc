"""My Page: OpenID identities linked to users ((issuer, subject) unique)

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "web_identities",
        sa.Column("issuer", sa.String(255), primary_key=True),
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("user_pk", sa.Integer, sa.ForeignKey("users.pk", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("user_pk", "issuer", name="uq_web_identities_user"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("web_identities")
