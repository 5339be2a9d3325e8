#!/usr/bin/env python3
"""Check a de-identified session as a whole, then move it into the output, folder or zip (rule publish_session)."""

import checkout  # noqa: F401 - must come first: puts this checkout's dicom_deid on sys.path
import argparse
import json
from pathlib import Path

from dicom_deid.job import run_job
from dicom_deid.paths import ANONYMIZED_FILES, RESULTS, SOURCES_LIST
from dicom_deid.records import FileResult, Sources, read_record, read_records
from dicom_deid.stages.publish import publish_session


def main(anonymized_dir: Path, final: Path, report: Path, session: str, settings: dict) -> None:
    sources = read_record(anonymized_dir / SOURCES_LIST, Sources)
    results = read_records(anonymized_dir / RESULTS, FileResult)
    publish_session(sources, results, anonymized_dir / ANONYMIZED_FILES, final, report, session, settings)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--anonymized", type=Path, required=True, help="the anonymize stage's scratch folder")
    parser.add_argument("--output", type=Path, required=True, help="the session's folder or zip in the output")
    parser.add_argument("--report", type=Path, required=True, help="the session's JSON report")
    parser.add_argument("--session", required=True, help="<SUBJECT>_<SES>, for messages")
    parser.add_argument("--settings", type=json.loads, required=True, help="options recorded in the report")
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    run_job(args.log, main, args.anonymized, args.output, args.report, args.session, args.settings)
