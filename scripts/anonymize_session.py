"""Snakemake script: anonymize and check one session's staged files, into scratch."""

import checkout  # noqa: F401 - must come first: puts this checkout's dicom_deid on sys.path
import json
from pathlib import Path

from dicom_deid.anonymize import Policy
from dicom_deid.job import run_job
from dicom_deid.keyfile import read_seed
from dicom_deid.session import anonymize_sources, results_to_json, write_json


def main(staged_path, key_file, out_dir, results_path, workers, session, options) -> None:
    policy = Policy(
        seed=read_seed(key_file),
        keep=tuple(options.keep),
        private_tags=options.private_tags,
        patient_name=options.patient_name or None,
    )
    crosswalk = Path(options.crosswalk_file) if options.crosswalk_file else None
    results = anonymize_sources(json.loads(staged_path.read_text()), out_dir, policy, workers, session, crosswalk)
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
        smk.params,
    )
