"""Stage 4, report: the dataset summary (one TSV row per session) and a self-contained HTML page of the dataset,
what an ethics board or a data recipient reads.

Rules `dataset_summary` and `html_report`. Built only from the session reports (which name files by output path
and hold no DICOM value) and the configuration (whose key file path is shown, never the key).
"""

from __future__ import annotations

import csv
import html
import io
import json
from importlib.metadata import version
from pathlib import Path

from dicom_deid import tags
from dicom_deid.records import SessionReport, Verdict, read_record
from dicom_deid.verify import CHECKS

SUMMARY_COLUMNS = (
    "session",
    "input_files",
    "instances_written",
    "series",
    "modalities",
    "skipped_non_dicom",
    "dropped_dicomdir",
    "values_repaired",
    "verification",
)


def read_reports(report_paths: list[Path]) -> list[SessionReport]:
    return [read_record(path, SessionReport) for path in sorted(report_paths)]


def summary_table(reports: list[SessionReport]) -> str:
    """TSV with one row per session report."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS)
    for report in reports:
        counts = report.counts
        writer.writerow(
            [report.session, *(getattr(counts, c) for c in SUMMARY_COLUMNS[1:-1]), report.verification.value]
        )
    return out.getvalue()


STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f2f2f2}.pass{color:#176117}.fail{color:#a11;font-weight:bold}code{background:#f5f5f5}
"""


def _e(value) -> str:
    return html.escape(str(value))


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _bar_chart(title: str, values: dict[str, int]) -> str:
    """Horizontal bars as inline SVG: no plotting library, no external file."""
    if not values:
        return ""
    width, bar, gap, label_width = 640, 18, 6, 220
    top = max(values.values()) or 1
    rows = []
    for index, (label, value) in enumerate(values.items()):
        y = index * (bar + gap)
        length = (width - label_width - 60) * value / top
        rows.append(
            f'<text x="{label_width - 6}" y="{y + 13}" text-anchor="end" font-size="12">{_e(label)}</text>'
            f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar}" fill="#4a7bb7"/>'
            f'<text x="{label_width + length + 4:.1f}" y="{y + 13}" font-size="12">{value}</text>'
        )
    height = len(values) * (bar + gap)
    return (
        f"<h3>{_e(title)}</h3>"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{_e(title)}">{"".join(rows)}</svg>'
    )


def build_html(reports: list[SessionReport], config: dict) -> str:
    failed_checks = sum(r.verification is not Verdict.PASS for r in reports)
    summary_rows = []
    modalities: dict[str, int] = {}
    for report in reports:
        counts = report.counts
        for modality in filter(None, counts.modalities.split(",")):
            modalities[modality] = modalities.get(modality, 0) + 1
        verdict = report.verification.value
        summary_rows.append(
            [
                _e(report.session),
                counts.input_files,
                counts.instances_written,
                counts.series,
                _e(counts.modalities),
                counts.skipped_non_dicom + counts.dropped_dicomdir,
                counts.values_repaired,
                f'<span class="{verdict}">{verdict}</span>',
            ]
        )
    skipped_rows = [
        [_e(r.session), f"<code>{_e(item.path)}</code>", _e(item.reason)] for r in reports for item in r.skipped
    ]
    repaired_rows = [
        [_e(r.session), _e(keyword), count] for r in reports for keyword, count in r.repaired_values_by_keyword.items()
    ]
    check_rows = [
        [_e(r.session)] + [f'<span class="{r.checks[c].result.value}">{r.checks[c].result.value}</span>' for c in CHECKS]
        for r in reports
    ]
    config_rows = [[f"<code>{_e(k)}</code>", f"<code>{_e(json.dumps(v))}</code>"] for k, v in sorted(config.items())]
    total = sum(r.counts.instances_written for r in reports)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>De-identification report</title><style>{STYLE}</style></head>
<body>
<h1>De-identification report</h1>
<p>{len(reports)} session(s), {total} DICOM instance(s) de-identified; sessions failing verification:
<span class="{"fail" if failed_checks else "pass"}">{failed_checks}</span>.
Sessions whose job failed have no report yet: their log names each bad file.</p>
<h2>Sessions</h2>
{_table(["session", "input files", "instances", "series", "modalities", "skipped", "values repaired",
         "verification"], summary_rows)}
{_bar_chart("Instances per session", {r.session: r.counts.instances_written for r in reports})}
{_bar_chart("Sessions per modality", dict(sorted(modalities.items())))}
<h2>Verification checks</h2>
{_table(["session", *CHECKS], check_rows)}
<h2>Skipped files</h2>
{_table(["session", "file (output path)", "reason"], skipped_rows) if skipped_rows else "<p>None.</p>"}
<h2>Malformed values emptied</h2>
{_table(["session", "attribute", "count"], repaired_rows) if repaired_rows else "<p>None.</p>"}
<h2>What was done</h2>
<ul>
<li>Replaced with consistent pseudonyms: {_e(", ".join(tags.REPLACED))}; names, dates (shifted) and UIDs
(remapped) by dicognito's defaults.</li>
<li>Removed at every depth: {_e(", ".join(tags.REMOVED))}.</li>
<li>Kept untouched on request: {_e(", ".join(config["keep"]) or "nothing")}.
Private elements: {_e(config["private_tags"])}.</li>
</ul>
<h2>Versions and configuration</h2>
{_table(["package", "version"], [[p, _e(version(p))] for p in ("dicognito", "pydicom", "snakemake")])}
{_table(["key", "value"], config_rows)}
<p>The key that seeds the pseudonyms is not shown; only where it is kept.</p>
</body></html>
"""
