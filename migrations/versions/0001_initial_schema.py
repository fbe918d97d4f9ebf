"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa
import mailbot.db.models


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('known_senders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('school', sa.String(length=255), nullable=False),
    sa.Column('created_at', mailbot.db.models.UTCDateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email', 'school', name='uq_known_senders')
    )
    op.create_table('messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mailbox', sa.String(length=64), nullable=False),
    sa.Column('folder', sa.String(length=255), nullable=True),
    sa.Column('uidvalidity', sa.Integer(), nullable=True),
    sa.Column('uid', sa.String(length=255), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('message_id', sa.String(length=998), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('archive_path', sa.Text(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sender', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('date', mailbot.db.models.UTCDateTime(), nullable=True),
    sa.Column('received_at', mailbot.db.models.UTCDateTime(), nullable=False),
    sa.Column('read_at', mailbot.db.models.UTCDateTime(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.Column('warnings', sa.JSON(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('purged_at', mailbot.db.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('mailbox', 'folder', 'uidvalidity', 'uid', name='uq_messages_mailbox_uid')
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_message_id', ['message_id'], unique=False)
        batch_op.create_index('ix_messages_sha256', ['sha256'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('mailbox', sa.String(length=64), nullable=False),
    sa.Column('from_addr', sa.String(length=320), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('to_addrs', sa.JSON(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('message_pk', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', mailbot.db.models.UTCDateTime(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', mailbot.db.models.UTCDateTime(), nullable=False),
    sa.Column('sent_at', mailbot.db.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['message_pk'], ['messages.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_message_id'), ['message_id'], unique=False)
        batch_op.create_index('ix_outbox_recipient', ['recipient', 'created_at'], unique=False)
        batch_op.create_index('ix_outbox_status', ['status', 'next_attempt_at'], unique=False)

    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_pk', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('candidate_schools', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', mailbot.db.models.UTCDateTime(), nullable=False),
    sa.Column('decided_at', mailbot.db.models.UTCDateTime(), nullable=True),
    sa.Column('decided_by', sa.String(length=255), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['message_pk'], ['messages.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_pk')
    )
    op.create_table('submissions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('school', sa.String(length=255), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('message_pk', sa.Integer(), nullable=True),
    sa.Column('sender', sa.String(length=320), nullable=False),
    sa.Column('received_at', mailbot.db.models.UTCDateTime(), nullable=False),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('replaced_by', sa.Integer(), nullable=True),
    sa.Column('voided_at', mailbot.db.models.UTCDateTime(), nullable=True),
    sa.Column('void_reason', sa.Text(), nullable=True),
    sa.Column('entered_by', sa.String(length=255), nullable=True),
    sa.Column('created_at', mailbot.db.models.UTCDateTime(), nullable=False),
    sa.Column('schools_count', sa.Integer(), nullable=False),
    sa.Column('enrolled', sa.Integer(), nullable=False),
    sa.Column('participating', sa.Integer(), nullable=False),
    sa.Column('two_plus_n', sa.Boolean(), nullable=False),
    sa.Column('services', sa.JSON(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=True),
    sa.Column('sheet', sa.String(length=255), nullable=False),
    sa.Column('row_number', sa.Integer(), nullable=False),
    sa.Column('warnings', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['message_pk'], ['messages.id'], ),
    sa.ForeignKeyConstraint(['replaced_by'], ['submissions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.create_index('ix_submissions_school_month', ['school', 'month'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_index('ix_submissions_school_month')

    op.drop_table('submissions')
    op.drop_table('quarantine')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_status')
        batch_op.drop_index('ix_outbox_recipient')
        batch_op.drop_index(batch_op.f('ix_outbox_message_id'))

    op.drop_table('outbox')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_sha256')
        batch_op.drop_index('ix_messages_message_id')

    op.drop_table('messages')
    op.drop_table('known_senders')
