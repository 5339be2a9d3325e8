"""The private crosswalk: original PatientID and StudyInstanceUID beside their pseudonyms, and the subject's date
offset in days (what was added to every date; subtract it to get the real dates back).

It re-identifies subjects, so it lives outside the output, is created with mode 0600, and is meant for
whoever at the site is authorized to re-identify (the data custodian), never for the recipients.
"""

from __future__ import annotations

import csv
import fcntl
import os
from pathlib import Path

HEADER = (
    "session",
    "original_patient_id",
    "pseudonymous_patient_id",
    "original_study_uid",
    "pseudonymous_study_uid",
    "date_offset_days",
)


def offset_in_days(offset) -> str:
    """A timedelta as days: whole days as an integer (per_subject), else exact to the hour (global)."""
    days = offset.total_seconds() / 86400
    return str(int(days)) if days == int(days) else f"{days:.4f}"


def append_rows(path: str | Path, session: str, rows: set[tuple[str, ...]]) -> int:
    """Add the rows not yet present; safe when concurrent jobs append at once. Returns rows added."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "r+", newline="") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # held until the file is closed
        handle.seek(0)
        lines = list(csv.reader(handle, delimiter="\t"))
        if lines and tuple(lines[0]) != HEADER:
            raise ValueError(f"{path}: a crosswalk of another format (columns {lines[0]}); move it aside and rerun")
        existing = {tuple(row) for row in lines}
        new = sorted({(session, *row) for row in rows} - existing)
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        if HEADER not in existing:
            writer.writerow(HEADER)
        writer.writerows(new)
        handle.flush()
        os.fsync(handle.fileno())
    return len(new)
