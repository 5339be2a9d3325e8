#!/usr/bin/env python3
"""Check a de-identified session as a whole, then move it into the output, folder or zip (rule publish_session)."""

import argparse
import json
from pathlib import Path

import checkout  # noqa: F401 - must come first: puts this checkout's dicom_deid on sys.path
from dicom_deid.job import run_job
from dicom_deid.paths import ANONYMIZED_FILES, RESULTS, SOURCES_LIST
from dicom_deid.records import ON_BAD_FILE, FileResult, Sources, read_record, read_records
from dicom_deid.stages.publish import publish_session

STAGE = "publish_session"


def main(anonymized_dir: Path, final: Path, report: Path, session: str, options) -> None:
    sources = read_record(anonymized_dir / SOURCES_LIST, Sources)
    results = read_records(anonymized_dir / RESULTS, FileResult)
    files_dir = anonymized_dir / ANONYMIZED_FILES
    publish_session(sources, results, files_dir, final, report, session, options.settings, options.on_bad_file)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--anonymized", type=Path, required=True, help="the anonymize stage's scratch folder")
    parser.add_argument("--output", type=Path, required=True, help="the session's folder or zip in the output")
    parser.add_argument("--report", type=Path, required=True, help="the session's JSON report")
    parser.add_argument("--session", required=True, help="<SUBJECT>_<SES>, for messages")
    parser.add_argument("--settings", type=json.loads, required=True, help="options recorded in the report")
    parser.add_argument("--on-bad-file", choices=ON_BAD_FILE, required=True, help="fail_session or skip_file")
    parser.add_argument("--log", required=True)
    parser.add_argument("--status", default="", help="where to record the session's failure, for the reports")
    args = parser.parse_args()
    run_job(
        args.log, main, args.anonymized, args.output, args.report, args.session, args, status=args.status, stage=STAGE
    )
