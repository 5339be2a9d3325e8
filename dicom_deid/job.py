"""Glue for the rules' scripts: log to the job's log file, turn a known failure into a clear message, and record a
failed session's outcome in its status file for the reports.

Every job imports this module, so it imports nothing heavy.
"""

from __future__ import annotations

import errno
import logging
import sys
from pathlib import Path

from dicom_deid.paths import printable, session_of_record
from dicom_deid.records import Failure, SessionState, SessionStatus, SkippedFile, write_report

# What a session's status says while its job runs, and still says if the job is killed from outside.
KILLED = (
    "the job stopped before it finished, with no error of its own (killed from outside: out of memory, over its "
    "time limit, or cancelled?)"
)


class SessionError(Exception):
    """A session that cannot be de-identified; the message lists every bad file and its reason."""

    def __init__(self, message: str, failures: list[Failure], files_left_out: list[SkippedFile] | None = None):
        super().__init__(message)
        self.failures = failures
        self.files_left_out = files_left_out or []


def session_error(
    session: str, failures: list[Failure], what: str = "bad file(s)", files_left_out: list[SkippedFile] | None = None
) -> SessionError:
    lines = "\n".join(f"  - {failure.line()}" for failure in failures)
    return SessionError(
        f"session {session}: {len(failures)} {what}, nothing written:\n{lines}", failures, files_left_out
    )


def write_failure_status(
    path: str, stage: str, failures: list[Failure], files_left_out: list[SkippedFile] | None = None
) -> None:
    """Record that the session's `stage` failed, and why, where the reports find it."""
    subject, ses = session_of_record(path)
    status = SessionStatus(
        session=Path(path).stem,
        subject=subject,
        ses=ses,
        state=SessionState.FAILED,
        stage=stage,
        failures=failures,
        files_left_out=files_left_out or [],
    )
    write_report(Path(path), status)


def clear_status(path: str) -> None:
    """A published session has no failure to show: remove what an earlier failed run recorded."""
    Path(path).unlink(missing_ok=True)


class _PrintableFormatter(logging.Formatter):
    """Log lines name files as the reports do (paths.printable), so one can be looked up in the other."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def _fail(message: str) -> None:
    logging.error("%s", message)
    print(printable(message), file=sys.stderr)
    sys.exit(1)


def run_job(log_path: str, function, *args, status: str = "", stage: str = "", **kwargs) -> None:
    """Run `function` with the job's logging; the session's `status` file (if given) records a failure, and is
    removed when the job succeeds."""
    handler = logging.FileHandler(log_path)
    handler.setFormatter(_PrintableFormatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(handlers=[handler], level=logging.INFO, force=True)
    # pydicom logs the offending value of a malformed element; such values must not reach a log.
    logging.getLogger("pydicom").disabled = True

    def record(failures: list[Failure], files_left_out: list[SkippedFile] | None = None) -> None:
        if status:
            write_failure_status(status, stage, failures, files_left_out)

    try:
        # Until the job knows its outcome, its status says it did not finish: a job killed from outside (out of
        # memory, over Slurm's time limit, cancelled) runs none of the handlers below, and its session would
        # otherwise show in the reports as "not run yet".
        record([Failure("", f"{KILLED}, see the log {log_path}")])
        function(*args, **kwargs)
    except SessionError as error:
        record(error.failures, error.files_left_out)
        _fail(str(error))
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            record([Failure("", f"disk full (or quota exceeded), see the log {log_path}")])
            _fail(f"disk full (or quota exceeded) while writing {error.filename or 'the output'}: free space and rerun")
        logging.exception("job failed")
        record([Failure("", f"unexpected error, see the log {log_path}")])
        raise
    except Exception:
        logging.exception("job failed")
        record([Failure("", f"unexpected error, see the log {log_path}")])
        raise
    if status:
        clear_status(status)  # done: an earlier run's failure, or the one recorded above, no longer holds
