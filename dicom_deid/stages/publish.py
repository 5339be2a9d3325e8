"""Stage 3, publish (verify and publish): check the session as a whole; only a session that passes every check
enters the output, in one step, as a folder (mirrored layout) or a zip (data2bids), with its report.
With on_bad_file: skip_file, bad files and files that fail a per-file check are deleted from scratch first and
listed in the report: the rest of the session is published, "in part".

Rule `publish_session`. Imports no pydicom unless a skipped file must be re-read.
"""

from __future__ import annotations

import filecmp
import logging
import os
import shutil
import zipfile
from collections import Counter
from importlib.metadata import version
from pathlib import Path

from dicom_deid.job import session_error
from dicom_deid.paths import printable
from dicom_deid.records import (
    FAIL_SESSION,
    SKIP_FILE,
    CaseClash,
    Check,
    Counts,
    Failure,
    FileResult,
    Outcome,
    PatientGroup,
    RepeatedInstance,
    SessionReport,
    SessionState,
    SkippedFile,
    Sources,
    StudyGroup,
    Verdict,
    bad_files,
    split_message,
    write_report,
)
from dicom_deid.verify.session import check_session, repeated

log = logging.getLogger(__name__)

# Fixed member times, so the same input and key give byte-identical zips.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or one without hard links
        shutil.copy2(source, target)


def place_folder(staged_dir: Path, final_dir: Path) -> None:
    """Put the verified folder in place in one rename, from a hidden folder beside it that holds its files as hard
    links (copies across file systems). Scratch is left whole for Snakemake to remove (temp()): a publish killed
    at any point, even after the rename, runs again from it."""
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = final_dir.with_name(f".{final_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(staged_dir, partial, copy_function=_link_or_copy)
    os.rename(partial, final_dir)


class MemberNameClash(OSError):
    """Two files whose names the zip would show alike: a byte that is not UTF-8 is written %XX."""

    def __init__(self, zip_name: str, names: list[str]) -> None:
        super().__init__(f"{zip_name}: two files would share the member name {', '.join(names)}")
        self.names = names


def write_zip(staged_dir: Path, relpaths: list[str], zip_path: Path) -> None:
    """Zip the verified files (paths relative to the session), check the zip, then rename it into place; scratch is
    left whole, as by place_folder."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    partial = zip_path.with_name(f".{zip_path.name}.partial")
    # A zip member's name is text: a name that is not UTF-8 is stored as the reports show it.
    members = {printable(relpath): relpath for relpath in relpaths}
    if shared := repeated([printable(relpath) for relpath in relpaths]):
        raise MemberNameClash(zip_path.name, shared)
    try:
        # DICOM pixel data is often compressed already; storing keeps the job fast and the zip streamable.
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
            for name in sorted(members):
                info = zipfile.ZipInfo(name, ZIP_DATE_TIME)
                info.external_attr = 0o644 << 16
                with open(staged_dir / members[name], "rb") as source, archive.open(info, "w") as member:
                    shutil.copyfileobj(source, member, 1024**2)
        with zipfile.ZipFile(partial) as archive:
            if archive.testzip() is not None or sorted(archive.namelist()) != sorted(members):
                raise OSError(f"{zip_path.name}: the zip written does not read back complete")
        os.replace(partial, zip_path)
    finally:
        partial.unlink(missing_ok=True)  # a failed zip leaves nothing in the output


def leave_out_bad_files(
    sources: Sources, results: list[FileResult], files_dir: Path
) -> tuple[list[FileResult], list[SkippedFile]]:
    """on_bad_file: skip_file. Delete from scratch every file that failed a per-file check, and mark it, and every
    bad file, LEFT_OUT: the session check then accounts for them and they can never reach the output."""
    left_out = [SkippedFile(f.path, f.reason) for f in bad_files(sources, results)]
    kept = []
    for result in results:
        failed_checks = sorted(name for name, items in result.failures.items() if items)
        if result.outcome is Outcome.BAD:
            result = FileResult(result.relpath, Outcome.LEFT_OUT, result.reason, source_relpath=result.source_relpath)
        elif result.outcome is Outcome.WRITTEN and failed_checks:
            (files_dir / result.relpath).unlink(missing_ok=True)  # gone already if a killed publish runs again
            reason = f"failed verification: {', '.join(failed_checks)}"
            left_out.append(SkippedFile(result.relpath, reason))
            result = FileResult(result.relpath, Outcome.LEFT_OUT, reason, source_relpath=result.source_relpath)
        kept.append(result)
    return kept, sorted(left_out, key=lambda item: item.path)


def verification_failures(checks: dict[str, Check]) -> list[Failure]:
    return [Failure(*split_message(item), check=name) for name, check in checks.items() for item in check.failures]


def _verification(checks: dict[str, Check], left_out: list[SkippedFile]) -> str:
    if any(check.result is not Verdict.PASS for check in checks.values()):
        return Verdict.FAIL.value
    if left_out:
        return f"pass, {len(left_out)} file(s) left out (see files_left_out)"
    return Verdict.PASS.value


def _grouped(written: list[FileResult], key) -> dict[str, list[FileResult]]:
    """The files by `key(file)` (files for which it is empty are in no group), each group in path order, the
    groups in the order of their first files."""
    groups: dict[str, list[FileResult]] = {}
    for result in sorted(written, key=lambda r: r.relpath):
        if value := key(result):
            groups.setdefault(value, []).append(result)
    return groups


def patient_groups(written: list[FileResult]) -> list[PatientGroup]:
    """The published files by patient (distinct PatientIDs; files without one are in no group), largest first,
    each found by its first file in path order."""
    groups = []
    for patient, files in _grouped(written, lambda r: r.patient).items():
        days = sorted({f.study_day for f in files if f.study_day})
        span = days[-1] - days[0] if days else 0
        groups.append(
            PatientGroup(len(files), len({f.series for f in files}), files[0].relpath, patient, len(days), span)
        )
    return sorted(groups, key=lambda g: (-g.files, g.first_file))


def study_groups(written: list[FileResult]) -> list[StudyGroup]:
    """The published files by study (distinct StudyInstanceUIDs; files without one are in no group), each found
    by its first file in path order, in that order."""
    return [
        StudyGroup(study, len(files), len({f.series for f in files}), files[0].relpath)
        for study, files in _grouped(written, lambda r: r.study).items()
    ]


def case_clashes(written: list[FileResult]) -> list[CaseClash]:
    """Every published file whose path another file's equals but for case (`Scan/IM1.dcm`, `scan/IM1.dcm`)."""
    return [
        CaseClash(later.relpath, first.relpath)
        for first, *laters in _grouped(written, lambda r: r.relpath.casefold()).values()
        for later in laters
    ]


def repeated_instances(written: list[FileResult], files_dir: Path) -> list[RepeatedInstance]:
    """Every published file whose SOP instance an earlier file (by path) holds too, and whether the two are the
    same bytes: conversion keeps one of them (dcm2niix: "DUPLICATES REMOVED"), and a recipient gets both."""
    repeats = [
        RepeatedInstance(
            later.relpath,
            first.relpath,
            filecmp.cmp(files_dir / first.relpath, files_dir / later.relpath, shallow=False),
        )
        for first, *laters in _grouped(written, lambda r: r.instance).values()
        for later in laters
    ]
    return sorted(repeats, key=lambda repeat: repeat.path)


def session_report(
    session: str,
    sources: Sources,
    results: list[FileResult],
    checks: dict[str, Check],
    settings: dict,
    left_out: list[SkippedFile] | None = None,
) -> SessionReport:
    """`settings`: the options that shaped the output (keep, private_tags, output_layout); never the key."""
    left_out = left_out or []
    outcomes = Counter(r.outcome for r in results)
    written = [r for r in results if r.outcome is Outcome.WRITTEN]
    repaired: Counter[str] = Counter()
    scrubbed: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    patients = patient_groups(written)
    for result in written:
        repaired.update(result.repaired)
        scrubbed.update(result.scrubbed)
        actions.update(result.profile_actions)
    return SessionReport(
        session=session,
        state=SessionState.PUBLISHED_IN_PART if left_out else SessionState.PUBLISHED,
        counts=Counts(
            input_files=len(sources.files),
            instances_written=outcomes[Outcome.WRITTEN],
            series=len({r.series for r in written}),
            modalities=",".join(sorted({r.modality for r in written if r.modality})),
            skipped_non_dicom=outcomes[Outcome.SKIPPED],
            dropped_dicomdir=outcomes[Outcome.DROPPED],
            values_repaired=sum(repaired.values()),
            patients=len(patients),
        ),
        skipped=[SkippedFile(r.relpath, r.reason) for r in results if r.outcome in (Outcome.SKIPPED, Outcome.DROPPED)],
        files_left_out=left_out,
        repaired_values_by_keyword=dict(sorted(repaired.items())),
        scrubbed=dict(sorted(scrubbed.items())),
        private_elements={
            "kept": sum(r.private_kept for r in written),
            "removed": sum(r.private_removed for r in written),
        },
        burned_in=[SkippedFile(r.relpath, r.burned_in) for r in written if r.burned_in],
        profile_actions=dict(sorted(actions.items())),
        checks=checks,
        verification=_verification(checks, left_out),
        settings=settings,
        versions={name: version(name) for name in ("dicognito", "pydicom")},
        patient_groups=patients,
        studies=study_groups(written),
        case_clashes=case_clashes(written),
    )


def publish_session(
    sources: Sources,
    results: list[FileResult],
    files_dir: Path,
    final: Path,
    report_path: Path,
    session: str,
    settings: dict,
    on_bad_file: str = FAIL_SESSION,
) -> SessionReport:
    """Gather the checks; if every one passed, put the session in place (folder or zip) and write its report."""
    left_out: list[SkippedFile] = []
    if on_bad_file == SKIP_FILE:
        results, left_out = leave_out_bad_files(sources, results, files_dir)
    checks = check_session(sources, results, files_dir)
    report = session_report(session, sources, results, checks, settings, left_out)
    if report.verification == Verdict.FAIL.value:
        raise session_error(session, verification_failures(checks), "verification failure(s)", left_out)
    written = [r for r in results if r.outcome is Outcome.WRITTEN]
    if left_out and not written:
        failures = [Failure(item.path, item.reason) for item in left_out]
        raise session_error(session, failures, "file(s) left out and not one left to publish")
    log.info("%s: every check passed: %s", session, ", ".join(checks))
    for item in left_out:
        log.warning("%s: left out (on_bad_file: skip_file): %s: %s", session, item.path, item.reason)
    if len(report.patient_groups) > 1:
        groups = "; ".join(
            f"{g.files} file(s) in {g.series} series, first {g.first_file}" for g in report.patient_groups
        )
        log.warning("%s: holds %d patients (distinct PatientIDs): %s", session, len(report.patient_groups), groups)
    for group in report.patient_groups:
        if group.study_days > 1:
            days = f"{group.study_days} days, {group.span_days} days from first to last"
            log.warning("%s: its studies lie on %s (first file %s)", session, days, group.first_file)
    report.repeated_instances = repeated_instances(written, files_dir)  # every file is there: verification passed
    for repeat in report.repeated_instances:
        how = "same bytes" if repeat.identical else "other bytes"
        log.warning("%s: %s repeats the SOP instance of %s (%s)", session, repeat.path, repeat.same_as, how)
    for clash in report.case_clashes:
        log.warning("%s: %s differs from %s only in case", session, clash.path, clash.same_as)
    if final.suffix == ".zip":
        try:
            write_zip(files_dir, [r.relpath for r in written], final)
        except MemberNameClash as clash:
            why = "another file's name is shown alike in the zip (a byte that is not UTF-8 is written %XX): rename one"
            failures = [Failure(name, why) for name in clash.names]
            raise session_error(session, failures, "name clash(es) in the zip") from None
    else:
        place_folder(files_dir, final)
    write_report(report_path, report)
    return report
