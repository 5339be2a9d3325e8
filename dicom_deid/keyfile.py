"""The secret that seeds dicognito, so every job and every later run maps a value to the same pseudonym, and the
digest of a PatientID keyed with it, by which the reports tell patients apart."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

KEY_BYTES = 32


def ensure_key(path: str | Path) -> bool:
    """Create the key file with random bytes and mode 0600 if it is missing. True when it was created."""
    path = Path(path)
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two runs starting at once must not overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(KEY_BYTES) + "\n")
    return True


def read_seed(path: str | Path) -> str:
    """The seed text; refuses a key that is empty or readable by others."""
    path = Path(path)
    try:
        seed = path.read_text().strip()
    except UnicodeDecodeError:
        raise ValueError(
            f"key_file {path}: not text; a key is one line of text, such as the 64 hex characters of "
            f"python3 -c 'import secrets; print(secrets.token_hex(32))' > {path}"
        ) from None
    if len(seed) < 16:
        raise ValueError(f"key_file {path}: too short to be a secret (at least 16 characters)")
    if path.stat().st_mode & 0o077:
        raise PermissionError(f"key_file {path}: readable by group or others; run: chmod 600 {path}")
    return seed


def keyed_digest(seed: str, purpose: str, value: str) -> str:
    """A keyed digest of `value` ("" for none): equal for equal values under one key, so the reports can count and
    match them across sessions, and no value of the file. 64 bits: a clash between two of a site's values is out
    of reach."""
    value = value.strip()
    # The purpose goes into the message: the same key seeds dicognito, whose pseudonyms this must not repeat.
    message = f"dicom-deid {purpose}\0{value}".encode()
    return hmac.new(seed.encode(), message, "sha256").hexdigest()[:16] if value else ""


def patient_token(seed: str, patient_id: str) -> str:
    """Which patient a file belongs to: a keyed digest of its original PatientID, also where PatientID is kept."""
    return keyed_digest(seed, "patient", patient_id)


def study_token(seed: str, study_uid: str) -> str:
    """Which study a file belongs to: a keyed digest of its original StudyInstanceUID."""
    return keyed_digest(seed, "study", study_uid)


def key_check(seed: str) -> str:
    """A keyed digest of a fixed text, recorded in each session report: a later run with another key finds that it
    differs. It tells nothing of the key, nor of any value."""
    return keyed_digest(seed, "key check", "dicom-deid")
