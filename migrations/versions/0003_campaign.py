"""campaign decisions: excused schools and the void log

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa
import mailbot.db.models


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('excuses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('school', sa.String(length=255), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=False),
    sa.Column('created_at', mailbot.db.models.UTCDateTime(), nullable=False),
    sa.Column('withdrawn_by', sa.String(length=255), nullable=True),
    sa.Column('withdrawn_at', mailbot.db.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('school', 'month', name='uq_excuses_school_month')
    )
    op.create_table('void_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('school', sa.String(length=255), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('voided_by', sa.String(length=255), nullable=False),
    sa.Column('voided_at', mailbot.db.models.UTCDateTime(), nullable=False),
    sa.Column('restored_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('void_log', schema=None) as batch_op:
        batch_op.create_index('ix_void_log_school_month', ['school', 'month'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('void_log', schema=None) as batch_op:
        batch_op.drop_index('ix_void_log_school_month')

    op.drop_table('void_log')
    op.drop_table('excuses')
