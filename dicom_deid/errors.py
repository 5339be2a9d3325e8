"""The one failure a job reports as a message rather than a traceback (no heavy imports: every job loads it)."""

from __future__ import annotations


class SessionError(Exception):
    """A session that cannot be de-identified; the message lists every bad file and its reason."""


def session_error(session: str, problems: list[str], what: str = "bad file(s)") -> SessionError:
    lines = "\n".join(f"  - {p}" for p in problems)
    return SessionError(f"session {session}: {len(problems)} {what}, nothing written:\n{lines}")
