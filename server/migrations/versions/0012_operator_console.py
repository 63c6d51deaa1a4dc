"""operator console: staff, their passkeys, sessions and invitations; a challenge's owner;
a vehicle's NOREL care plan (its driver cap)

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _staff_fk() -> sa.Column:
    return sa.Column("staff_pk", sa.Integer,
                     sa.ForeignKey("console_staff.pk", ondelete="CASCADE"), nullable=False,
                     index=True)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "console_staff",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("operator_id", sa.String(40),
                  sa.ForeignKey("operators.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("partner_id", sa.String(40),
                  sa.ForeignKey("partners.id", ondelete="CASCADE"), nullable=True, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "console_passkeys",
        sa.Column("credential_id", sa.LargeBinary, primary_key=True),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("sign_count", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_used_at", sa.BigInteger, nullable=False),
        _staff_fk(),
    )
    for table in ("console_sessions", "console_invitations"):
        op.create_table(
            table,
            sa.Column("token_hash", sa.String(64), primary_key=True),
            sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
            _staff_fk(),
        )
    with op.batch_alter_table("web_challenges") as batch:
        batch.add_column(sa.Column("owner", sa.String(40), nullable=True))
    with op.batch_alter_table("locks") as batch:
        batch.add_column(sa.Column("care_plan", sa.String(16), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("locks") as batch:
        batch.drop_column("care_plan")
    with op.batch_alter_table("web_challenges") as batch:
        batch.drop_column("owner")
    for table in ("console_invitations", "console_sessions", "console_passkeys",
                  "console_staff"):
        op.drop_table(table)
