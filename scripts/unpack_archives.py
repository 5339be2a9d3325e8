#!/usr/bin/env python3
"""Unpack a session's archives into scratch and list every file to de-identify (rule unpack_archives)."""

import argparse
import json
from pathlib import Path

import checkout  # noqa: F401 - must come first: puts this checkout's dicom_deid on sys.path
from dicom_deid.archives import Limits
from dicom_deid.job import run_job
from dicom_deid.paths import MEMBERS, SOURCES_LIST
from dicom_deid.records import write_record
from dicom_deid.stages.unpack import list_sources

STAGE = "unpack_archives"


def main(session_dir: Path, unpacked_dir: Path, limits: Limits) -> None:
    write_record(unpacked_dir / SOURCES_LIST, list_sources(session_dir, unpacked_dir / MEMBERS, limits))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--session", type=Path, required=True, help="the session folder in the input")
    parser.add_argument("--unpacked", type=Path, required=True, help="scratch folder to create")
    parser.add_argument("--limits", type=json.loads, required=True, help="config 'archives', as JSON")
    parser.add_argument("--log", required=True)
    parser.add_argument("--status", default="", help="where to record the session's failure, for the reports")
    args = parser.parse_args()
    run_job(
        args.log, main, args.session, args.unpacked, Limits.from_config(args.limits), status=args.status, stage=STAGE
    )
