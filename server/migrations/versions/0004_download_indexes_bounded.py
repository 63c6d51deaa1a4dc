"""download-path indexes whose lookups do not grow with a phone's key count

The newest-key lookup (per phone, request and request version, newest ``exp``/``iat`` first)
and the lookup of the locks of a phone's revoked keys now each stop after the rows they
need; the 0003 indexes made both scan every unexpired key of the phone.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("issued_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_issued_keys_phone_exp_lock")
        batch_op.drop_index("ix_issued_keys_phone_request_exp")
        batch_op.create_index(
            "ix_issued_keys_newest",
            ["phone_id", "request_id", "request_version", "exp", "iat"],
            unique=False,
        )
        batch_op.create_index(
            "ix_issued_keys_phone_revoked",
            ["phone_id", "revoked", "exp", "lock_pk"],
            unique=False,
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("issued_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_issued_keys_phone_revoked")
        batch_op.drop_index("ix_issued_keys_newest")
        batch_op.create_index(
            "ix_issued_keys_phone_request_exp", ["phone_id", "request_id", "exp"], unique=False
        )
        batch_op.create_index(
            "ix_issued_keys_phone_exp_lock", ["phone_id", "exp", "lock_pk"], unique=False
        )
