"""key-request list pages of one user or one lock that do not walk the whole operator

With only (operator_id, id) from 0009, SQLite answered ``GET /v1/key-requests?user_id=…``
(or ``lock_id=…``) by walking the operator's requests in ID order until it found that user's
(bench/scale.py: p50 112 ms / 234 ms at 200,000 requests); (user_pk, id) and (lock_pk, id)
give the page directly in order.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_key_requests_user_page", ["user_pk", "id"]),
    ("ix_key_requests_lock_page", ["lock_pk", "id"]),
)


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("key_requests", schema=None) as batch_op:
        for name, columns in _INDEXES:
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("key_requests", schema=None) as batch_op:
        for name, _columns in _INDEXES:
            batch_op.drop_index(name)
