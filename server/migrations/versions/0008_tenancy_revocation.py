"""locks belong to one operator; revocation never comes undone

Lock IDs become unique per operator (no answer tells an operator whether another one holds
an ID); locks keep a key generation and a generation floor (bulk revocation, protocol §7);
issued keys and revocation entries record the generation they were issued at; registration
challenges (proof of possession, §5) are stored until used or expired.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("locks", schema=None) as batch_op:
        batch_op.drop_constraint("uq_locks_lock_id", type_="unique")
        batch_op.create_unique_constraint("uq_locks_operator_lock", ["operator_id", "lock_id"])
        batch_op.create_index(batch_op.f("ix_locks_lock_id"), ["lock_id"], unique=False)
        batch_op.add_column(
            sa.Column("key_generation", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("min_generation", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("retired_at", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("issued_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("generation", sa.BigInteger(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("revocations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("generation", sa.BigInteger(), server_default="0", nullable=False)
        )
    op.create_table(
        "registration_challenges",
        sa.Column("challenge_hash", sa.String(length=64), nullable=False),
        sa.Column("operator_id", sa.String(length=40), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["operator_id"],
            ["operators.id"],
            name=op.f("fk_registration_challenges_operator_id_operators"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("challenge_hash", name=op.f("pk_registration_challenges")),
    )
    with op.batch_alter_table("registration_challenges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_registration_challenges_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_registration_challenges_operator_id"), ["operator_id"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("registration_challenges")
    with op.batch_alter_table("revocations", schema=None) as batch_op:
        batch_op.drop_column("generation")
    with op.batch_alter_table("issued_keys", schema=None) as batch_op:
        batch_op.drop_column("generation")
    with op.batch_alter_table("locks", schema=None) as batch_op:
        batch_op.drop_column("retired_at")
        batch_op.drop_column("min_generation")
        batch_op.drop_column("key_generation")
        batch_op.drop_index(batch_op.f("ix_locks_lock_id"))
        batch_op.drop_constraint("uq_locks_operator_lock", type_="unique")
        batch_op.create_unique_constraint("uq_locks_lock_id", ["lock_id"])
