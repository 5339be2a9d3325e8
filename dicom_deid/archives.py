"""Unpack .tar .tgz .tar.gz .tar.bz2 .tbz2 .tar.xz .txz .zip archives without trusting them.

Every member is checked before anything is written: only regular files and folders, no absolute paths,
no `..`, no links, devices or fifos, and bounded member count, total size and compression ratio.
Archives found inside an archive are unpacked too, at their own place, up to `max_depth` levels, and
share the same size and count budget.
"""

from __future__ import annotations

import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Longest first, so ".tar.gz" is matched before ".tar"; compared case-insensitively (".ZIP" is an archive too).
# .tbz2, .tbz and .tb2 are tar's (and Python's shutil's) short names for .tar.bz2; tarfile tells the compression
# from the content.
ARCHIVE_SUFFIXES = (".tar.bz2", ".tar.gz", ".tar.xz", ".tgz", ".tbz2", ".tbz", ".tb2", ".txz", ".tar", ".zip")
# Archives that the standard library cannot open: an error that names them, rather than a file skipped as "not
# DICOM", so that the images inside are not left out unnoticed.
FOREIGN_ARCHIVE_SUFFIXES = (".tar.zst", ".tzst", ".7z", ".rar")


def foreign_archive(name: str) -> str:
    """Why `name` cannot be unpacked by the workflow, or "" for any other file."""
    lower = name.lower()
    suffix = next((s for s in FOREIGN_ARCHIVE_SUFFIXES if lower.endswith(s) and len(name) > len(s)), "")
    if not suffix:
        return ""
    return f"a {suffix} archive, which the workflow cannot unpack: unpack it in place, or repack it as .zip"


def archive_stem(name: str) -> str | None:
    """Name of an archive without its extension, or None when `name` is no archive we unpack."""
    lower = name.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def archive_destination(archive_relpath: str) -> str:
    """Where an archive's members land, relative to the session: `a/b.tar.gz` -> `a/b`."""
    path = PurePosixPath(archive_relpath)
    stem = archive_stem(path.name)
    if stem is None:
        raise ValueError(f"{archive_relpath}: not an archive")
    return str(path.parent / stem) if str(path.parent) != "." else stem


class ArchiveError(Exception):
    """An archive that cannot be unpacked safely; the message names the archive and the reason."""


@dataclass(frozen=True)
class Limits:
    """Bounds against archive bombs, per session; the defaults live in config/config.yaml (key `archives`)."""

    max_members: int
    max_total_bytes: int
    max_ratio: float  # unpacked bytes per archive byte; DICOM rarely compresses beyond ~10
    max_depth: int  # archives inside archives

    @classmethod
    def from_config(cls, config: dict) -> Limits:
        return cls(
            max_members=config["max_members"],
            max_total_bytes=int(config["max_total_gb"] * 1024**3),
            max_ratio=config["max_ratio"],
            max_depth=config["max_depth"],
        )


@dataclass
class Budget:
    members: int = 0
    total_bytes: int = 0


def _safe_member_path(archive: str, name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute():
        raise ArchiveError(f"{archive}: member {name!r} has an absolute path")
    if ".." in path.parts:
        raise ArchiveError(f"{archive}: member {name!r} has a '..' component")
    if not path.parts or path.parts[0][1:2] == ":":
        raise ArchiveError(f"{archive}: member {name!r} is not a relative path")
    return path


def _charge(archive: str, budget: Budget, limits: Limits, size: int, own_bytes: int, archive_bytes: int) -> None:
    """Count one member against the budget shared by nested archives.

    The ratio compares `own_bytes` (what this archive alone unpacks, `size` included) with this archive's size:
    the shared total also holds the bytes of the archives around it.
    """
    budget.members += 1
    budget.total_bytes += size
    if budget.members > limits.max_members:
        raise ArchiveError(f"{archive}: more than {limits.max_members} members (max_members)")
    if budget.total_bytes > limits.max_total_bytes:
        raise ArchiveError(f"{archive}: unpacks to more than {limits.max_total_bytes} bytes (max_total_gb)")
    if own_bytes > limits.max_ratio * max(archive_bytes, 1) and own_bytes > 1024**2:
        raise ArchiveError(f"{archive}: compression ratio above {limits.max_ratio} (max_ratio), an archive bomb?")


def _refuse_existing(label: str, dest: Path, path: PurePosixPath, name: str) -> None:
    # A nested archive unpacks into a folder its outer archive may fill too; never replace a file silently.
    if (dest / path).exists():
        raise ArchiveError(f"{label}: member {name!r} appears twice or would replace an unpacked file")


def _tar_members(label: str, tar: tarfile.TarFile, budget: Budget, limits: Limits, size: int):
    members = []
    own_bytes = 0
    for member in tar:  # iterating, not getmembers(), stops a huge member list at max_members
        if member.isdir() and not PurePosixPath(member.name).parts:
            continue  # "./", the archive's own root, as `tar -C folder -c .` writes it
        path = _safe_member_path(label, member.name)
        if member.issym() or member.islnk():
            raise ArchiveError(f"{label}: member {member.name!r} is a link")
        if not (member.isreg() or member.isdir()):
            raise ArchiveError(f"{label}: member {member.name!r} is a device, fifo or other special file")
        own_bytes += member.size
        _charge(label, budget, limits, member.size, own_bytes, size)
        members.append((path, member))
    return members


def _check_tar_complete(label: str, tar: tarfile.TarFile) -> None:
    """Refuse a cut or damaged tar before anything is written.

    tarfile ends its member list quietly at a missing, cut or damaged header, so the members after it would be
    lost unnoticed; a whole archive has its end-of-archive zero block where the list ended. gzip and bzip2
    verify their checksum only at the end of the stream, which reading the headers need not reach.
    """
    tar.fileobj.seek(tar.offset)
    if tar.fileobj.read(tarfile.BLOCKSIZE) != bytes(tarfile.BLOCKSIZE):
        raise ArchiveError(f"{label}: corrupt or truncated archive (no end-of-archive block after the last member)")
    while tar.fileobj.read(1024**2):
        pass


def _unpack_tar(archive: Path, label: str, dest: Path, budget: Budget, limits: Limits) -> list[PurePosixPath]:
    with tarfile.open(archive) as tar:
        members = _tar_members(label, tar, budget, limits, archive.stat().st_size)
        _check_tar_complete(label, tar)
        files = [(path, member) for path, member in members if member.isreg()]
        if len({path for path, _ in files}) < len(files):
            raise ArchiveError(f"{label}: a member name appears twice")
        for path, member in files:
            _refuse_existing(label, dest, path, member.name)
        # Every member was checked above; the 'data' filter is a second fence of the standard library's.
        tar.extractall(dest, members=[member for _, member in files], filter="data")
        return [path for path, _ in files]


# Set when a zip member's name is UTF-8; zipfile decodes a name without it as cp437.
_ZIP_UTF8_NAME = 0x800


def _zip_member_name(info: zipfile.ZipInfo) -> str:
    """A member's name as the same file would have it on disk or in a tar (os.fsdecode of its bytes).

    Info-ZIP under LC_ALL=C, macOS Archive Utility and many Windows exporters store UTF-8 or cp1252 names without
    the UTF-8 flag; decoded as cp437 ("M├╝ller"), a patient's name in them escapes the name scrub. Encoding
    zipfile's cp437 name gives back the stored bytes exactly."""
    if info.flag_bits & _ZIP_UTF8_NAME:
        return info.filename
    return os.fsdecode(info.filename.encode("cp437"))


def _zip_members(label: str, zf: zipfile.ZipFile, budget: Budget, limits: Limits, size: int):
    """(path, name, info) for every member, checked; `name` is the decoded name messages quote."""
    members = []
    own_bytes = 0
    for info in zf.infolist():
        name = _zip_member_name(info)
        path = _safe_member_path(label, name.replace("\\", "/"))
        file_type = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip was not made on Unix
        if file_type == stat.S_IFLNK:
            raise ArchiveError(f"{label}: member {name!r} is a link")
        if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise ArchiveError(f"{label}: member {name!r} is a device, fifo or other special file")
        if info.flag_bits & 0x1:
            raise ArchiveError(f"{label}: member {name!r} is encrypted")
        own_bytes += info.file_size
        _charge(label, budget, limits, info.file_size, own_bytes, size)
        members.append((path, name, info))
    return members


def _unpack_zip(archive: Path, label: str, dest: Path, budget: Budget, limits: Limits) -> list[PurePosixPath]:
    with zipfile.ZipFile(archive) as zf:
        written = []
        for path, name, info in _zip_members(label, zf, budget, limits, archive.stat().st_size):
            if info.is_dir():
                continue
            _refuse_existing(label, dest, path, name)
            target = dest / path
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as source, open(target, "wb") as out:  # zipfile opens a member by its own info
                # zipfile stops at the declared size and checks the CRC, so a lying header fails here.
                shutil.copyfileobj(source, out, 1024**2)
            written.append(path)
        return written


def unpack_archive(
    archive: Path, label: str, dest: Path, limits: Limits, budget: Budget | None = None, depth: int = 1
) -> list[str]:
    """Unpack `archive` into `dest`; return the unpacked files' paths relative to `dest`.

    `label` names the archive in messages (its path relative to the session, never an absolute path).
    Archives among the members are unpacked in turn into `<folder>/<stem>/` beside themselves and removed.
    """
    budget = budget or Budget()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if archive.name.lower().endswith(".zip"):
            members = _unpack_zip(archive, label, dest, budget, limits)
        else:
            members = _unpack_tar(archive, label, dest, budget, limits)
    except ArchiveError:
        raise
    except PermissionError:
        raise ArchiveError(f"{label}: not readable (permission denied)") from None
    # zlib and lzma raise their own errors on damaged compressed data; RuntimeError covers NotImplementedError.
    except (
        tarfile.TarError,
        zipfile.BadZipFile,
        EOFError,
        OSError,
        RuntimeError,
        ValueError,
        zlib.error,
        lzma.LZMAError,
    ) as error:
        raise ArchiveError(f"{label}: corrupt or truncated archive ({type(error).__name__}: {error})") from None

    files = []
    for member in members:
        member_path = dest / member
        if why := foreign_archive(member.name):
            raise ArchiveError(f"{label}: member {member.as_posix()!r} is {why}")
        if archive_stem(member.name) is None:
            files.append(member.as_posix())
            continue
        if depth >= limits.max_depth:
            raise ArchiveError(f"{label}: holds archives nested deeper than {limits.max_depth} levels (max_depth)")
        inner_rel = archive_destination(member.as_posix())
        inner = unpack_archive(member_path, f"{label}!{member.as_posix()}", dest / inner_rel, limits, budget, depth + 1)
        member_path.unlink()
        files += [f"{inner_rel}/{name}" for name in inner]
    return files
