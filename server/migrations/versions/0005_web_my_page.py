"""My Page: passkeys, web sessions, invitations, WebAuthn challenges (server/web/store.py)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _user_fk(nullable: bool = False) -> sa.Column:
    return sa.Column("user_pk", sa.Integer, sa.ForeignKey("users.pk", ondelete="CASCADE"),
                     nullable=nullable, index=not nullable)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "web_passkeys",
        sa.Column("credential_id", sa.LargeBinary, primary_key=True),
        _user_fk(),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("sign_count", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_used_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        _user_fk(),
        sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
    )
    op.create_table(
        "web_invitations",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        _user_fk(),
        sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
    )
    op.create_table(
        "web_challenges",
        sa.Column("challenge", sa.LargeBinary, primary_key=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        _user_fk(nullable=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
    )


def downgrade() -> None:
    """Revert this revision."""
    for table in ("web_challenges", "web_invitations", "web_sessions", "web_passkeys"):
        op.drop_table(table)
