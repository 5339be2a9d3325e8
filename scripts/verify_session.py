"""Snakemake script: gather a session's checks, then move it into the output (folder or zip)."""

import checkout  # noqa: F401 - must come first: puts this checkout's dicom_deid on sys.path
import json
from pathlib import Path

from dicom_deid.job import run_job
from dicom_deid.session import publish_verified


def main(staged: Path, results: Path, anonymized: Path, final: Path, report: Path, session: str, settings: dict):
    publish_verified(
        json.loads(staged.read_text()), json.loads(results.read_text()), anonymized, final, report, session, settings
    )


if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake
    run_job(
        smk.log[0],
        main,
        Path(smk.input.staged),
        Path(smk.input.results),
        Path(smk.input.anonymized),
        Path(smk.output.session),
        Path(smk.output.report),
        smk.params.session,
        dict(smk.params.settings),
    )
