"""key custody: the server keeps no key secret; used device-bound request proofs

Phones now draw each key's secret K and wrap it to the lock themselves; the server only
signs the credential around the wrap, so ``issued_keys.secret_sealed`` goes (and with it
every sealed K a server ever held). Idempotency records keep a shown secret (installer token,
enrollment code) apart and only for minutes. ``dpop_proofs`` keeps the ``jti`` of each accepted
DPoP-style proof until it is outside the clock window, so a proof is accepted once.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "dpop_proofs",
        sa.Column("jti_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("jti_hash", name=op.f("pk_dpop_proofs")),
    )
    with op.batch_alter_table("dpop_proofs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dpop_proofs_used_at"), ["used_at"], unique=False)
    # forget every server-drawn K: keys issued before keep working for the phones that
    # downloaded them; a phone without the K of a key sends a wrap and gets a new key
    with op.batch_alter_table("issued_keys", schema=None) as batch_op:
        batch_op.drop_column("secret_sealed")
    # idempotent replays show a secret only for minutes; older outcomes are cut to none
    with op.batch_alter_table("idempotency", schema=None) as batch_op:
        batch_op.add_column(sa.Column("secret_sealed", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("secret_until", sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f("ix_idempotency_secret_until"), ["secret_until"])
    op.execute("DELETE FROM idempotency")  # outcomes stored with secrets inside


def downgrade() -> None:
    """Revert this revision (old keys stay without a secret: the server never gets K back)."""
    with op.batch_alter_table("idempotency", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_secret_until"))
        batch_op.drop_column("secret_until")
        batch_op.drop_column("secret_sealed")
    with op.batch_alter_table("issued_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "secret_sealed", sa.LargeBinary(), nullable=False, server_default=sa.text("X''")
            )
        )
    with op.batch_alter_table("dpop_proofs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dpop_proofs_used_at"))
    op.drop_table("dpop_proofs")
