"""Snakemake script: the self-contained HTML report of the dataset (rule html_report)."""

import checkout  # noqa: F401 - must come first: puts this checkout's dicom_deid on sys.path
from pathlib import Path

from dicom_deid.job import run_job
from dicom_deid.stages.report import build_html, read_reports


def main(reports: list[Path], config: dict, html: Path) -> None:
    html.write_text(build_html(read_reports(reports), config))


if __name__ == "__main__":
    smk = snakemake  # noqa: F821 - injected by Snakemake
    run_job(smk.log[0], main, [Path(p) for p in smk.input.reports], dict(smk.params.config), Path(smk.output.html))
