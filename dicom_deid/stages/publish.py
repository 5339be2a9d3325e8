"""Stage 3, publish (verify and publish): check the session as a whole; only a session that passes every check
enters the output, in one step, as a folder (mirrored layout) or a zip (data2bids), with its report.

Rule `publish_session`. Imports no pydicom unless a skipped file must be re-read.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import zipfile
from pathlib import Path

from collections import Counter
from importlib.metadata import version

from dicom_deid.job import session_error
from dicom_deid.records import (
    Check,
    Counts,
    FileResult,
    Outcome,
    SessionReport,
    SkippedFile,
    Sources,
    Verdict,
    write_record,
)
from dicom_deid.verify.session import check_session

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


def session_report(
    session: str, sources: Sources, results: list[FileResult], checks: dict[str, Check], settings: dict
) -> SessionReport:
    """`settings`: the options that shaped the output (keep, private_tags, output_layout); never the key."""
    outcomes = Counter(r.outcome for r in results)
    written = [r for r in results if r.outcome is Outcome.WRITTEN]
    repaired: Counter[str] = Counter()
    scrubbed: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    for result in results:
        repaired.update(result.repaired)
        scrubbed.update(result.scrubbed)
        actions.update(result.profile_actions)
    return SessionReport(
        session=session,
        counts=Counts(
            input_files=len(sources.files),
            instances_written=outcomes[Outcome.WRITTEN],
            series=len({r.series for r in written}),
            modalities=",".join(sorted({r.modality for r in written if r.modality})),
            skipped_non_dicom=outcomes[Outcome.SKIPPED],
            dropped_dicomdir=outcomes[Outcome.DROPPED],
            values_repaired=sum(repaired.values()),
        ),
        skipped=[
            SkippedFile(r.relpath, r.reason) for r in results if r.outcome in (Outcome.SKIPPED, Outcome.DROPPED)
        ],
        repaired_values_by_keyword=dict(sorted(repaired.items())),
        scrubbed=dict(sorted(scrubbed.items())),
        private_elements={
            "kept": sum(r.private_kept for r in written),
            "removed": sum(r.private_removed for r in written),
        },
        burned_in=[SkippedFile(r.relpath, r.burned_in) for r in written if r.burned_in],
        profile_actions=dict(sorted(actions.items())),
        checks=checks,
        verification=Verdict.PASS if all(c.result is Verdict.PASS for c in checks.values()) else Verdict.FAIL,
        settings=settings,
        versions={name: version(name) for name in ("dicognito", "pydicom")},
    )


def publish_session(
    sources: Sources,
    results: list[FileResult],
    files_dir: Path,
    final: Path,
    report_path: Path,
    session: str,
    settings: dict,
) -> SessionReport:
    """Gather the checks; if every one passed, put the session in place (folder or zip) and write its report."""
    checks = check_session(sources, results, files_dir)
    report = session_report(session, sources, results, checks, settings)
    if report.verification is not Verdict.PASS:
        failures = [f"[{name}] {item}" for name, check in checks.items() for item in check.failures]
        raise session_error(session, failures, "verification failure(s)")
    log.info("%s: every check passed: %s", session, ", ".join(checks))
    if final.suffix == ".zip":
        write_zip(files_dir, [r.relpath for r in results if r.outcome is Outcome.WRITTEN], final)
    else:
        move_into_place(files_dir, final)
    write_record(report_path, report)
    return report
