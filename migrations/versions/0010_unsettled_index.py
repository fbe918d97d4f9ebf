"""a partial index on the ledger rows a poll may retry (outcome NULL or failed), so an empty poll
no longer reads its folder's whole ledger (issue 13 point 5)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# As written in mailbot.db.models.UNSETTLED (a migration keeps its own copy: the model may move on).
UNSETTLED = "outcome IS NULL OR outcome = 'failed'"


def upgrade() -> None:
    op.create_index('ix_messages_unsettled', 'messages', ['mailbox', 'folder', 'uidvalidity'], unique=False,
                    sqlite_where=sa.text(UNSETTLED), postgresql_where=sa.text(UNSETTLED))


def downgrade() -> None:
    op.drop_index('ix_messages_unsettled', table_name='messages')
