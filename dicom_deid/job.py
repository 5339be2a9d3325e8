"""Glue for Snakemake scripts: log to the job's log file, and turn a known failure into a clear message."""

from __future__ import annotations

import logging
import sys

from dicom_deid.session import SessionError


def run_job(log_path: str, function, *args, **kwargs) -> None:
    logging.basicConfig(
        filename=log_path, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True
    )
    # pydicom logs the offending value of a malformed element; such values must not reach a log.
    logging.getLogger("pydicom").disabled = True
    try:
        function(*args, **kwargs)
    except SessionError as error:
        logging.error("%s", error)
        print(error, file=sys.stderr)
        sys.exit(1)
    except Exception:
        logging.exception("job failed")
        raise
