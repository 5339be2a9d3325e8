"""The secret that seeds dicognito, so every job and every later run maps a value to the same pseudonym."""

from __future__ import annotations

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
    seed = path.read_text().strip()
    if len(seed) < 16:
        raise ValueError(f"key_file {path}: too short to be a secret (at least 16 characters)")
    if path.stat().st_mode & 0o077:
        raise PermissionError(f"key_file {path}: readable by group or others; run: chmod 600 {path}")
    return seed
