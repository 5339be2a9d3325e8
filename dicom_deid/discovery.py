"""Find subjects and sessions in the data2bids imaging layout, and collect what would otherwise be left behind.

Input: <input_dir>/<SUBJECT>/imaging/<SUBJECT>_<SES>/...   (paths.py builds every path from there on)
Runs when the workflow is parsed, before any job; imports neither pydicom nor dicognito.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from dicom_deid.archives import archive_stem
from dicom_deid.paths import IMAGING, RESERVED, Paths, printable, session_name, session_of_record

# A subject or session folder's name becomes part of Snakemake's file names, which must be UTF-8 text.
NOT_UTF8 = "folder name is not UTF-8 text (Latin-1 or another code page): rename it, e.g. convmv -f latin1 -t utf8"


# A folder the account running the workflow may not list: its sessions or files cannot be seen, so never skipped.
NOT_READABLE = "not readable by this account (permission denied): give it read access, or leave the folder out"


@dataclass(frozen=True)
class Session:
    subject: str
    ses: str  # the part after "<SUBJECT>_"
    path: Path
    fingerprint: str  # changes when any file of the session is added, removed or modified
    file_count: int
    size_bytes: int
    has_archives: bool = False  # only then does the session need the unpack stage
    largest_file_bytes: int = 0  # of the files outside archives (what archives hold is known only once unpacked)

    @property
    def name(self) -> str:
        return session_name(self.subject, self.ses)


@dataclass
class Discovery:
    sessions: list[Session] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # things left behind, reported but not fatal
    errors: list[str] = field(default_factory=list)  # things that stop the run
    # (subject, ses) of the session folders of subjects left out by `subjects`, by name alone: the reports still
    # list them, and none of them is gone from the input.
    not_selected: list[tuple[str, str]] = field(default_factory=list)

    def session_keys(self) -> list[tuple[str, str]]:
        """Every session the input holds, selected or not, in input order."""
        return sorted([(s.subject, s.ses) for s in self.sessions] + self.not_selected)


def walk_files(top: Path):
    """Yield (relative POSIX path, os.stat_result) for every file below `top`, one stat each.

    Symbolic links are followed, to files and to folders alike (a session put together from links into a central
    store), except a link back to a folder it lies in, which would never end: that link is yielded as it is, as
    are links whose target is gone, pipes, devices and folders this account may not read; reading them says what
    they are (dicomfile.read_instance).
    Plain strings, not Path objects: at 250,000 files the conversions alone cost seconds of every run.
    """
    top_stat = os.stat(top)
    stack = [("", frozenset([(top_stat.st_dev, top_stat.st_ino)]))]
    while stack:
        relative, above = stack.pop()
        try:
            entries = os.scandir(os.path.join(top, relative))
        except PermissionError:
            if not relative:
                raise
            yield relative, os.stat(os.path.join(top, relative))  # reading it names it: its files are missing
            continue
        with entries:
            for entry in entries:
                path = f"{relative}/{entry.name}" if relative else entry.name
                try:
                    st = entry.stat()
                except OSError:  # a link whose target is gone
                    yield path, entry.stat(follow_symlinks=False)
                    continue
                folder = (st.st_dev, st.st_ino)
                if stat.S_ISDIR(st.st_mode) and folder not in above:
                    stack.append((path, above | {folder}))
                else:
                    yield path, st


def session_fingerprint(session_dir: Path) -> tuple[str, int, int, bool, int]:
    """Hash of every file's relative path, size and mtime; the file count; the total size; any archives?;
    the largest file that is not an archive.

    Snakemake reruns a job whose params change, so passing this as a param reruns a session when a
    file anywhere below it is added, removed or rewritten, without listing every file as an input.
    """
    digest = hashlib.sha256()
    count = size = largest = 0
    archives = False
    for relpath, st in sorted(walk_files(session_dir)):
        digest.update(f"{relpath}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
        count += 1
        size += st.st_size
        if archive_stem(relpath.rpartition("/")[2]) is None:
            largest = max(largest, st.st_size)
        else:
            archives = True
    return digest.hexdigest()[:16], count, size, archives, largest


def discover(input_dir: str | Path, subjects: list[str] | None = None) -> Discovery:
    """Find every session; collect what would otherwise be silently left behind.

    `subjects`: restrict to these (each must exist); empty or None means every subject found.
    """
    root = Path(input_dir)
    found = Discovery()
    if not root.is_dir():
        found.errors.append(f"input_dir {root}: no such folder")
        return found

    try:
        subject_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    except PermissionError:
        found.errors.append(f"input_dir {root}: {NOT_READABLE}")
        return found
    by_name = {p.name: p for p in subject_dirs}
    if subjects:
        missing = [s for s in subjects if s not in by_name]
        found.errors += [f"subject {s} is listed in 'subjects' but {root / s} does not exist" for s in missing]
        subject_dirs = [by_name[s] for s in subjects if s in by_name]
        found.not_selected = [key for name in sorted(set(by_name) - set(subjects)) for key in _named(by_name[name])]

    for subject_dir in subject_dirs:
        subject = subject_dir.name
        imaging = subject_dir / IMAGING
        if printable(subject) != subject:
            found.errors.append(f"{printable(str(subject_dir))}: subject {NOT_UTF8}")
            continue
        if subject in RESERVED:
            found.errors.append(f"{subject_dir}: a subject may not be named '{subject}' (a folder of the output)")
            continue
        if not imaging.is_dir():
            found.warnings.append(f"{subject_dir}: no '{IMAGING}' folder, subject skipped")
            continue
        try:
            entries = sorted(imaging.iterdir())
        except PermissionError:
            found.errors.append(f"{imaging}: {NOT_READABLE}")
            continue
        for entry in entries:
            if not entry.is_dir():
                found.warnings.append(f"{entry}: file directly in '{IMAGING}/' is not in a session folder, skipped")
                continue
            if printable(entry.name) != entry.name:
                found.errors.append(f"{printable(str(entry))}: session {NOT_UTF8}")
                continue
            ses = _ses_of(subject, entry.name)
            if not ses:
                found.errors.append(
                    f"{entry}: session folder name must be '{subject}_<SES>' (start with its subject's name)"
                )
                continue
            try:
                fingerprint, count, size, archives, largest = session_fingerprint(entry)
            except PermissionError:
                found.errors.append(f"{entry}: session folder {NOT_READABLE}")
                continue
            if count == 0:
                found.warnings.append(f"{entry}: empty session folder, skipped")
                continue
            found.sessions.append(Session(subject, ses, entry, fingerprint, count, size, archives, largest))
    return found


def _ses_of(subject: str, folder: str) -> str:
    """The <SES> of a session folder named <SUBJECT>_<SES>; "" for a folder named otherwise."""
    return folder.removeprefix(f"{subject}_") if folder.startswith(f"{subject}_") else ""


def _named(subject_dir: Path) -> list[tuple[str, str]]:
    """(subject, ses) of each session folder of a subject by its name, without reading its files."""
    try:
        names = [entry.name for entry in (subject_dir / IMAGING).iterdir() if entry.is_dir()]
    except OSError:  # no imaging/ folder, or not readable: discover says so when that subject is run
        return []
    return [(subject_dir.name, ses) for name in names if (ses := _ses_of(subject_dir.name, name))]


def published_reports(paths: Paths) -> list[Path]:
    """The report of every session published to the output: <reports>/<SUBJECT>/<SUBJECT>_<SES>.json."""
    reports = Path(paths.reports_dir)
    return sorted(reports.glob("*/*.json")) if reports.is_dir() else []


def gone_sessions(reports: list[Path], found: Discovery) -> list[tuple[str, str]]:
    """(subject, ses) of each session whose report says it was published but whose folder is gone from the input
    (consent withdrawn, a session moved): its output stays until someone removes it."""
    in_input = set(found.session_keys())
    return [key for key in map(session_of_record, reports) if key not in in_input]


def published_but_gone(paths: Paths, gone: list[tuple[str, str]]) -> list[str]:
    """A warning for each of gone_sessions, which each run gives: their output stays until someone removes it."""
    return [
        f"{paths.session_output(subject, ses)}: session {subject}_{ses} is no longer in the input; "
        f"its output and report ({paths.session_report(subject, ses)}) stay until you remove them"
        for subject, ses in gone
    ]
