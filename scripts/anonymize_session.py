"""Snakemake script: anonymize one session's staged files into scratch."""

import checkout  # noqa: F401 - must come first: puts this checkout's dicom_deid on sys.path
import json
from pathlib import Path

from dicom_deid.job import run_job
from dicom_deid.keyfile import read_seed
from dicom_deid.session import anonymize_sources, results_to_json, write_json


def main(staged_path: Path, key_file: Path, out_dir: Path, results_path: Path, workers: int, session: str) -> None:
    staged = json.loads(staged_path.read_text())
    results = anonymize_sources(staged, out_dir, read_seed(key_file), workers, session)
    write_json(results_path, results_to_json(results))


if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake
    run_job(
        smk.log[0],
        main,
        Path(smk.input.staged),
        Path(smk.input.key),
        Path(smk.output.anonymized),
        Path(smk.output.results),
        smk.threads,
        smk.params.session,
    )
