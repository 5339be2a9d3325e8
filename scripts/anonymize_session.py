#!/usr/bin/env python3
"""De-identify and check one session's files, into scratch (rule anonymize_session)."""

import argparse
import json
from pathlib import Path

import checkout  # noqa: F401 - must come first: puts this checkout's dicom_deid on sys.path
from dicom_deid.job import run_job
from dicom_deid.keyfile import read_seed
from dicom_deid.lean_start import skip_unneeded_imports
from dicom_deid.paths import ANONYMIZED_FILES, RESULTS, SOURCES_LIST
from dicom_deid.records import ON_BAD_FILE, Policy, Sources, read_record, write_record, write_records
from dicom_deid.stages.unpack import list_sources

STAGE = "anonymize_session"


def main(session_dir: Path, unpacked_dir: Path | None, anonymized_dir: Path, options) -> None:
    skip_unneeded_imports()
    from dicom_deid.stages.anonymize import anonymize_session  # imports pydicom: after the line above

    policy = Policy(
        seed=read_seed(options.key),
        keep=tuple(options.keep),
        private_tags=options.private_tags,
        patient_name=options.patient_name or None,
        date_shift=options.date_shift,
        profile=options.profile,
        basic_options=tuple(options.basic_options),
    )
    crosswalk = Path(options.crosswalk_file) if options.crosswalk_file else None
    if unpacked_dir is None:  # no archives, no unpack stage: the files are read where they are
        sources = list_sources(session_dir)
    else:
        sources = read_record(unpacked_dir / SOURCES_LIST, Sources)
    files_dir = anonymized_dir / ANONYMIZED_FILES
    results = anonymize_session(
        sources, files_dir, policy, options.workers, options.session, crosswalk, options.on_bad_file
    )
    write_record(anonymized_dir / SOURCES_LIST, sources)  # for the publish stage; its problems renamed
    write_records(anonymized_dir / RESULTS, results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--session-dir", type=Path, required=True, help="the session folder in the input")
    parser.add_argument("--unpacked", default="", help="the unpack stage's scratch folder; empty: no archives")
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--anonymized", type=Path, required=True, help="scratch folder to create")
    parser.add_argument("--workers", type=int, required=True, help="worker processes (the job's threads)")
    parser.add_argument("--session", required=True, help="<SUBJECT>_<SES>, for messages")
    parser.add_argument("--keep", type=json.loads, required=True, help="keywords left untouched, as a JSON list")
    parser.add_argument("--private-tags", choices=("safe", "keep", "remove"), required=True)
    parser.add_argument("--date-shift", choices=("per_subject", "global"), required=True)
    parser.add_argument("--profile", choices=("minimal", "basic"), required=True)
    parser.add_argument("--basic-options", type=json.loads, required=True, help="options in use, as a JSON list")
    parser.add_argument("--patient-name", default="", help="PatientName to set; empty: dicognito's fake name")
    parser.add_argument("--crosswalk-file", default="", help="TSV to append original -> pseudonym rows to")
    parser.add_argument("--on-bad-file", choices=ON_BAD_FILE, required=True, help="fail_session or skip_file")
    parser.add_argument("--log", required=True)
    parser.add_argument("--status", default="", help="where to record the session's failure, for the reports")
    args = parser.parse_args()
    unpacked = Path(args.unpacked) if args.unpacked else None
    run_job(args.log, main, args.session_dir, unpacked, args.anonymized, args, status=args.status, stage=STAGE)
