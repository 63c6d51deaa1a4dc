"""operator list pages that do not grow with the fleet

``GET /v1/locks``, ``/v1/users`` and ``/v1/key-requests`` page one operator's rows in key
order after a cursor. With only the single-column ``operator_id`` indexes the planner read
every row of the operator and sorted them for each page (SQLite: a key-requests page took
~70 ms at 200,000 requests, bench/scale.py); an index on (operator_id, key) reads one page.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_INDEXES = (
    ("locks", "ix_locks_operator_page", ["operator_id", "pk"]),
    ("users", "ix_users_operator_page", ["operator_id", "pk"]),
    ("key_requests", "ix_key_requests_operator_page", ["operator_id", "id"]),
)


def upgrade() -> None:
    """Apply this revision."""
    for table, name, columns in _INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    """Revert this revision."""
    for table, name, _columns in _INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
