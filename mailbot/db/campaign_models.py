"""Tables of the operator's campaign decisions: excused schools and withdrawn (voided) submissions.

Kept apart from models.py so the schema of the ingest side stays readable; both share one `Base`
and one migration history (migrations/versions/0003_campaign.py creates these tables).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mailbot.db.models import Base, UTCDateTime


class Excuse(Base):
    """A school the operator excused for a month: not reminded, not counted missing, shown as
    excused. Withdrawing keeps the row (who/when) and clears it for a later excuse."""

    __tablename__ = "excuses"
    __table_args__ = (UniqueConstraint("school", "month", name="uq_excuses_school_month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school: Mapped[str] = mapped_column(String(255))  # the roster name
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    withdrawn_by: Mapped[str | None] = mapped_column(String(255))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class VoidLog(Base):
    """Who withdrew which submission, when and why, and which one is in force again because of it
    (Submission.voided_at/void_reason say that it was voided; this says by whom)."""

    __tablename__ = "void_log"
    __table_args__ = (Index("ix_void_log_school_month", "school", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"))
    school: Mapped[str] = mapped_column(String(255))
    month: Mapped[str] = mapped_column(String(7))
    reason: Mapped[str] = mapped_column(Text, default="")
    voided_by: Mapped[str] = mapped_column(String(255))
    voided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    restored_id: Mapped[int | None] = mapped_column(Integer)  # the submission in force again, if any
