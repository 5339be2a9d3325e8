"""Per-session report and dataset summary. They name files by output path and hold no DICOM value."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from importlib.metadata import version
from pathlib import Path

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


def session_report(session: str, staged: dict, results: list[dict], checks: dict, settings: dict) -> dict:
    """`settings`: the options that shaped the output (keep, private_tags, output_layout); never the key."""
    statuses = Counter(r["status"] for r in results)
    written = [r for r in results if r["status"] == "written"]
    repaired: Counter[str] = Counter()
    for result in results:
        repaired.update(result["repaired"])
    return {
        "session": session,
        "counts": {
            "input_files": len(staged["sources"]),
            "instances_written": statuses["written"],
            "series": len({r["series"] for r in written}),
            "modalities": ",".join(sorted({r["modality"] for r in written if r["modality"]})),
            "skipped_non_dicom": statuses["skipped"],
            "dropped_dicomdir": statuses["dropped"],
            "values_repaired": sum(repaired.values()),
        },
        "skipped": [
            {"path": r["relpath"], "reason": r["reason"]} for r in results if r["status"] in ("skipped", "dropped")
        ],
        "repaired_values_by_keyword": dict(sorted(repaired.items())),
        "checks": checks,
        "verification": "pass" if all(c["result"] == "pass" for c in checks.values()) else "fail",
        "settings": settings,
        "versions": {name: version(name) for name in ("dicognito", "pydicom")},
    }


def summary_table(report_paths: list[Path]) -> str:
    """TSV with one row per session report."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS)
    for path in sorted(report_paths):
        report = json.loads(Path(path).read_text())
        counts = report["counts"]
        writer.writerow([report["session"], *(counts[c] for c in SUMMARY_COLUMNS[1:-1]), report["verification"]])
    return out.getvalue()
