#!/usr/bin/env python3
"""Gather a session's checks, then move it into the output, folder or zip (rule verify_session)."""

import checkout  # noqa: F401 - must come first: puts this checkout's dicom_deid on sys.path
import argparse
import json
from pathlib import Path

from dicom_deid.job import run_job
from dicom_deid.layout import ANONYMIZED_FILES, RESULTS, SOURCES_LIST
from dicom_deid.publish import publish_verified


def main(anonymized_dir: Path, final: Path, report: Path, session: str, settings: dict):
    staged = json.loads((anonymized_dir / SOURCES_LIST).read_text())
    results = json.loads((anonymized_dir / RESULTS).read_text())
    publish_verified(staged, results, anonymized_dir / ANONYMIZED_FILES, final, report, session, settings)


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
