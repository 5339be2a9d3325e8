#!/usr/bin/env python3
"""Unpack a session's archives into scratch and list every file to de-identify (rule unpack_archives)."""

import checkout  # noqa: F401 - must come first: puts this checkout's dicom_deid on sys.path
import argparse
import json
from pathlib import Path

from dicom_deid.archives import Limits
from dicom_deid.job import run_job
from dicom_deid.layout import SOURCES_LIST, UNPACKED
from dicom_deid.publish import write_json
from dicom_deid.stage import stage_sources


def main(session_dir: Path, staged_dir: Path, limits: Limits) -> None:
    write_json(staged_dir / SOURCES_LIST, stage_sources(session_dir, staged_dir / UNPACKED, limits))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--session", type=Path, required=True, help="the session folder in the input")
    parser.add_argument("--staged", type=Path, required=True, help="scratch folder to create")
    parser.add_argument("--limits", type=json.loads, required=True, help="config 'archives', as JSON")
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    run_job(args.log, main, args.session, args.staged, Limits.from_config(args.limits))
