"""Snakemake script: unpack a session's archives into scratch and list its files."""

import checkout  # noqa: F401 - must come first: puts this checkout's dicom_deid on sys.path
from pathlib import Path

from dicom_deid.archives import Limits
from dicom_deid.job import run_job
from dicom_deid.session import stage_sources, write_json


def main(session_dir: Path, unpack_dir: Path, staged_path: Path, limits: Limits) -> None:
    write_json(staged_path, stage_sources(session_dir, unpack_dir, limits))


if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake
    run_job(
        smk.log[0],
        main,
        Path(smk.input.session),
        Path(smk.output.unpacked),
        Path(smk.output.staged),
        Limits.from_config(smk.params.limits),
    )
