"""Timestamps as Big Cartel writes them: ISO-8601 UTC with milliseconds and a `Z`."""

from datetime import datetime, timezone


def iso(moment):
    """`2024-05-01T12:00:00.000Z` for an aware or naive-UTC datetime."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now_iso():
    return iso(datetime.now(timezone.utc))


def parse_iso(text):
    """An aware UTC datetime from ISO-8601 text (a trailing `Z` allowed); ValueError if malformed."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
