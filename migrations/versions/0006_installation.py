"""installation id: a random token made with the database, carried by every Message-ID

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""
import secrets
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa
import mailbot.db.models


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table('installation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('created_at', mailbot.db.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    # Made with the database (or with the upgrade of an older one): random, so no two
    # installations, and no database made anew, share it.
    op.bulk_insert(table, [{"token": secrets.token_hex(8), "created_at": datetime.now(timezone.utc)}])


def downgrade() -> None:
    op.drop_table('installation')
