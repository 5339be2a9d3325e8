"""Glue for the rules' scripts: log to the job's log file, and turn a known failure into a clear message.

Every job imports this module, so it imports nothing heavy.
"""

from __future__ import annotations

import errno
import logging
import sys


class SessionError(Exception):
    """A session that cannot be de-identified; the message lists every bad file and its reason."""


def session_error(session: str, problems: list[str], what: str = "bad file(s)") -> SessionError:
    lines = "\n".join(f"  - {p}" for p in problems)
    return SessionError(f"session {session}: {len(problems)} {what}, nothing written:\n{lines}")


def _fail(message: str) -> None:
    logging.error("%s", message)
    print(message, file=sys.stderr)
    sys.exit(1)


def run_job(log_path: str, function, *args, **kwargs) -> None:
    logging.basicConfig(
        filename=log_path, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True
    )
    # pydicom logs the offending value of a malformed element; such values must not reach a log.
    logging.getLogger("pydicom").disabled = True
    try:
        function(*args, **kwargs)
    except SessionError as error:
        _fail(str(error))
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            _fail(f"disk full (or quota exceeded) while writing {error.filename or 'the output'}: free space and rerun")
        logging.exception("job failed")
        raise
    except Exception:
        logging.exception("job failed")
        raise
