"""The unpack stage: unpack a session's archives into scratch and list every file to de-identify."""

from __future__ import annotations

from pathlib import Path

from dicom_deid.archives import ArchiveError, Limits, unpack_archive
from dicom_deid.layout import archive_destination, archive_stem, walk_files


def stage_sources(session_dir: Path, unpack_dir: Path | None, limits: Limits) -> dict:
    """Unpack every archive of a session into `unpack_dir` and list every file to de-identify.

    Returns {"sources": [[output relpath, source path], ...], "problems": [...]}; sorted, so every later
    stage sees the files in the same order. Archive problems are collected, not raised, so that the
    anonymize stage can report them together with bad DICOM files. `unpack_dir` None: a session that had
    no archive when the workflow started (it has no unpack stage) just has its files listed.
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

    if unpack_dir is not None:
        unpack_dir.mkdir(parents=True, exist_ok=True)
    for relpath, _ in sorted(walk_files(session_dir)):
        source = session_dir / relpath
        if archive_stem(source.name) is None:
            add(relpath, source, f"file {relpath}")
            continue
        if unpack_dir is None:
            problems.append(f"{relpath}: archive added while the workflow ran; run it again to unpack it")
            continue
        destination = archive_destination(relpath)
        try:
            members = unpack_archive(source, relpath, unpack_dir / destination, limits)
        except ArchiveError as error:
            problems.append(str(error))
            continue
        for member in members:
            add(f"{destination}/{member}", unpack_dir / destination / member, f"member {member} of {relpath}")
    return {"sources": sorted(sources.items()), "problems": problems}
