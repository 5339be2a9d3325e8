"""Snakemake script: one TSV row per session report (rule dataset_summary)."""

import checkout  # noqa: F401 - must come first: puts this checkout's dicom_deid on sys.path
from pathlib import Path

from dicom_deid.job import run_job
from dicom_deid.stages.report import read_reports, summary_table


def main(reports: list[Path], summary: Path) -> None:
    summary.write_text(summary_table(read_reports(reports)))


if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake
    run_job(smk.log[0], main, [Path(p) for p in smk.input.reports], Path(smk.output.summary))
