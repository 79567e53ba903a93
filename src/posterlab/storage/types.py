"""Column types.

SQLite has no time zones: ``DateTime(timezone=True)`` stores the wall-clock fields of
whatever it is given and hands back naive values, while PostgreSQL hands back aware ones.
:class:`UTCDateTime` makes both behave alike: it stores UTC and always returns aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back as an aware UTC ``datetime``.

    Aware values of any zone are converted to UTC before they are stored. Naive values
    are refused with ``ValueError``: their zone is a guess, and a wrong guess shifts every
    comparison by hours. The DDL is that of ``DateTime(timezone=True)``.

    Examples
    --------
    >>> from datetime import timedelta, timezone
    >>> t = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    >>> UTCDateTime().process_bind_param(t, None)
    datetime.datetime(2026, 1, 1, 10, 0, tzinfo=datetime.timezone.utc)
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect | None) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"a UTC timestamp must be a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: its zone is "
                             "unknown; pass an aware one, e.g. datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect | None) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"a timestamp column returned {type(value).__name__}")
        if value.tzinfo is None:  # SQLite: stored as UTC wall-clock fields
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
