"""indexes for the download path on issued_keys

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("issued_keys", schema=None) as batch_op:
        batch_op.create_index(
            "ix_issued_keys_phone_request_exp", ["phone_id", "request_id", "exp"], unique=False
        )
        batch_op.create_index(
            "ix_issued_keys_phone_exp_lock", ["phone_id", "exp", "lock_pk"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("issued_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_issued_keys_phone_exp_lock")
        batch_op.drop_index("ix_issued_keys_phone_request_exp")
