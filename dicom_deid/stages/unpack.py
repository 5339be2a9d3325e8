"""Stage 1, unpack: unpack a session's archives into scratch and list every file to de-identify.

Rule `unpack_archives` (only for sessions that hold an archive); a session without archives is listed by the
anonymize stage itself, with the same function. Imports neither pydicom nor dicognito.
"""

from __future__ import annotations

from pathlib import Path

from dicom_deid.archives import ArchiveError, Limits, archive_destination, archive_stem, foreign_archive, unpack_archive
from dicom_deid.discovery import walk_files
from dicom_deid.records import Sources


def list_sources(session_dir: Path, members_dir: Path | None = None, limits: Limits | None = None) -> Sources:
    """Unpack every archive of a session into `members_dir` and list every file to de-identify.

    Archive problems are collected, not raised, so that the anonymize stage reports them together with bad
    DICOM files. `members_dir` None: a session that had no archive when the workflow started (it has no
    unpack stage) just has its files listed; an archive that appeared since is a problem. `limits` goes with
    `members_dir`.
    """
    sources: dict[str, str] = {}
    origins: dict[str, str] = {}  # output relpath -> where it came from, named relative to the session
    problems: list[str] = []

    def add(relpath: str, source: Path, origin: str) -> None:
        if relpath in sources:
            first, second = sorted([origins[relpath], origin])
            problems.append(f"{relpath}: both {first} and {second} map to this output path")
        else:
            sources[relpath], origins[relpath] = str(source), origin

    if members_dir is not None:
        members_dir.mkdir(parents=True, exist_ok=True)
    for relpath, _ in sorted(walk_files(session_dir)):
        source = session_dir / relpath
        if why := foreign_archive(source.name):
            problems.append(f"{relpath}: {why}")
            continue
        if archive_stem(source.name) is None:
            add(relpath, source, f"file {relpath}")
            continue
        if members_dir is None:
            problems.append(f"{relpath}: archive added while the workflow ran; run it again to unpack it")
            continue
        destination = archive_destination(relpath)
        try:
            members = unpack_archive(source, relpath, members_dir / destination, limits)
        except ArchiveError as error:
            problems.append(str(error))
            continue
        if not members:  # else it would have no outcome: a bad input, as a damaged archive is
            problems.append(f"{relpath}: archive holds no file (an export that failed?); remove it if it should")
        for member in members:
            add(f"{destination}/{member}", members_dir / destination / member, f"member {member} of {relpath}")
    return Sources(files=sorted(sources.items()), problems=problems)
