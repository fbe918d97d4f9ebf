"""PostgreSQL: UIDVALIDITY and UIDs are 32-bit unsigned, past PostgreSQL's integer (SQLite's
INTEGER holds 64 bits already, so there nothing changes)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

COLUMNS = [("messages", "uidvalidity"), ("mailbox_state", "uidvalidity"), ("mailbox_state", "last_uid")]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=sa.Integer(), existing_type=sa.BigInteger())
