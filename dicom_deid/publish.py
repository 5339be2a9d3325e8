"""The verify stage's end: a verified session appears in the output in one step, a folder (mirrored layout)
or a zip (data2bids), with its report; and JSON files that appear complete or not at all."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import zipfile
from pathlib import Path

from dicom_deid.checks import verify_session
from dicom_deid.errors import session_error
from dicom_deid.report import session_report

log = logging.getLogger(__name__)

# Fixed member times, so the same input and key give byte-identical zips.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def move_into_place(staged_dir: Path, final_dir: Path) -> None:
    """Rename the verified folder to its final name; across file systems, copy beside it and rename."""
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staged_dir, final_dir)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        partial = final_dir.with_name(f".{final_dir.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(staged_dir, partial)
        os.rename(partial, final_dir)
        shutil.rmtree(staged_dir)


def write_zip(staged_dir: Path, relpaths: list[str], zip_path: Path) -> None:
    """Zip the verified files (paths relative to the session), check the zip, then rename it into place."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    partial = zip_path.with_name(f".{zip_path.name}.partial")
    # DICOM pixel data is often compressed already; storing keeps the job fast and the zip streamable.
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
        for relpath in sorted(relpaths):
            info = zipfile.ZipInfo(relpath, ZIP_DATE_TIME)
            info.external_attr = 0o644 << 16
            with open(staged_dir / relpath, "rb") as source, archive.open(info, "w") as member:
                shutil.copyfileobj(source, member, 1024**2)
    with zipfile.ZipFile(partial) as archive:
        if archive.testzip() is not None or sorted(archive.namelist()) != sorted(relpaths):
            raise OSError(f"{zip_path.name}: the zip written does not read back complete")
    os.replace(partial, zip_path)
    shutil.rmtree(staged_dir)


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    partial.replace(path)


def publish_verified(
    staged: dict,
    results: list[dict],
    staged_dir: Path,
    final: Path,
    report_path: Path,
    session: str,
    settings: dict,
) -> dict:
    """Gather the checks; if every one passed, put the session in place (folder or zip) and write the report."""
    checks = verify_session(staged, results, staged_dir)
    report = session_report(session, staged, results, checks, settings)
    if report["verification"] != "pass":
        failures = [f"[{name}] {item}" for name, check in checks.items() for item in check["failures"]]
        raise session_error(session, failures, "verification failure(s)")
    log.info("%s: every check passed: %s", session, ", ".join(checks))
    if final.suffix == ".zip":
        write_zip(staged_dir, [r["relpath"] for r in results if r["status"] == "written"], final)
    else:
        move_into_place(staged_dir, final)
    write_json(report_path, report)
    return report
