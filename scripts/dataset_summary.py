"""Snakemake script: one TSV row per discovered session, with its state (rule dataset_summary)."""

from pathlib import Path

import checkout  # noqa: F401 - must come first: puts this checkout's dicom_deid on sys.path
from dicom_deid.job import run_job
from dicom_deid.stages.report import write_reports

if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake
    sessions, gone = ([tuple(session) for session in keys] for keys in (smk.params.sessions, smk.params.gone))
    run_job(smk.log[0], write_reports, dict(smk.params.config), sessions, Path(smk.output.summary), None, gone)
