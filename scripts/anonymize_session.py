#!/usr/bin/env python3
"""Anonymize and check one session's staged files, into scratch (rule anonymize_session)."""

import checkout  # noqa: F401 - must come first: puts this checkout's dicom_deid on sys.path
import argparse
import json
from pathlib import Path

from dicom_deid.anonymize import Policy
from dicom_deid.archives import Limits
from dicom_deid.job import run_job
from dicom_deid.keyfile import read_seed
from dicom_deid.layout import ANONYMIZED_FILES, RESULTS, SOURCES_LIST
from dicom_deid.publish import write_json
from dicom_deid.session import anonymize_sources, results_to_json
from dicom_deid.stage import stage_sources


def main(session_dir: Path, staged_dir: Path | None, key_file: Path, anonymized_dir: Path, workers: int,
         session: str, options) -> None:
    policy = Policy(
        seed=read_seed(key_file),
        keep=tuple(options.keep),
        private_tags=options.private_tags,
        patient_name=options.patient_name or None,
    )
    crosswalk = Path(options.crosswalk_file) if options.crosswalk_file else None
    if staged_dir is None:  # no archives, no unpack stage: the files are read where they are
        staged = stage_sources(session_dir, None, Limits())
    else:
        staged = json.loads((staged_dir / SOURCES_LIST).read_text())
    write_json(anonymized_dir / SOURCES_LIST, staged)  # for the verify stage
    results = anonymize_sources(staged, anonymized_dir / ANONYMIZED_FILES, policy, workers, session, crosswalk)
    write_json(anonymized_dir / RESULTS, results_to_json(results))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--session-dir", type=Path, required=True, help="the session folder in the input")
    parser.add_argument("--staged", default="", help="the unpack stage's scratch folder; empty: no archives")
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--anonymized", type=Path, required=True, help="scratch folder to create")
    parser.add_argument("--workers", type=int, required=True, help="worker processes (the job's threads)")
    parser.add_argument("--session", required=True, help="<SUBJECT>_<SES>, for messages")
    parser.add_argument("--keep", type=json.loads, default=[], help="keywords left untouched, as a JSON list")
    parser.add_argument("--private-tags", choices=("keep", "remove"), default="keep")
    parser.add_argument("--patient-name", default="", help="PatientName to set; empty: dicognito's fake name")
    parser.add_argument("--crosswalk-file", default="", help="TSV to append original -> pseudonym rows to")
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    staged = Path(args.staged) if args.staged else None
    run_job(args.log, main, args.session_dir, staged, args.key, args.anonymized, args.workers, args.session, args)
