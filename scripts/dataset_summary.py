"""Snakemake script: one TSV row per session report."""

import checkout  # noqa: F401 - must come first: puts this checkout's dicom_deid on sys.path
from pathlib import Path

from dicom_deid.job import run_job
from dicom_deid.report import summary_table


def main(reports: list[Path], summary: Path) -> None:
    summary.write_text(summary_table(reports))


if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake
    run_job(smk.log[0], main, [Path(p) for p in smk.input.reports], Path(smk.output.summary))
