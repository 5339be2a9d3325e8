"""Benchmark input trees, written through dicom_deid.example_tree (the demo tree's own session writer).

Every tree is a data2bids input tree (<root>/<SUBJECT>/imaging/<SUBJECT>_<SES>/...) plus, for the
dicognito and pydicom runs, `plain`: the same DICOM instances as plain files (archives unpacked, no
non-DICOM files). Identifying values are planted per subject by example_tree.plant_identity.
"""

from __future__ import annotations

import copy
import functools
import gzip
import importlib.util
import io
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from dicom_deid.archives import archive_destination
from dicom_deid.example_tree import (
    SessionLayout,
    archive_bytes,
    identity_for,
    packaged_path,
    read_packaged,
    write_file,
    write_session,
)
from dicom_deid.paths import session_input_dir

MB = 1024**2
ARCHIVE_SUFFIXES = (".tar", ".tgz", ".tar.gz", ".tar.bz2", ".zip")


@dataclass
class Tree:
    root: Path  # the workflow's input
    plain: Path  # the same instances as plain files, for dicognito and pydicom
    sessions: dict[str, tuple[int, int]] = field(default_factory=dict)  # "<SUB>_<SES>" -> (instances, bytes)
    build_s: float = 0.0
    notes: list[str] = field(default_factory=list)  # what the tree is made of, for the report

    @property
    def files(self) -> int:
        return sum(n for n, _ in self.sessions.values())

    @property
    def bytes(self) -> int:
        return sum(b for _, b in self.sessions.values())


def folder_stats(folder: Path) -> tuple[int, int]:
    """(files, bytes) below `folder`."""
    count = size = 0
    for parent, _, names in os.walk(folder):
        count += len(names)
        size += sum(os.path.getsize(os.path.join(parent, name)) for name in names)
    return count, size


def write_tree(root: Path, plain: Path, sessions: dict[tuple[str, str], SessionLayout], read) -> Tree:
    """Write every session into `root`; into `plain` (unless it is `root`) its instances as plain files."""
    started = time.perf_counter()
    tree = Tree(root, plain)
    for (subject, ses), layout in sessions.items():
        session_dir = session_input_dir(root, subject, ses)
        write_session(session_dir, f"{subject}_{ses}", layout, identity_for(subject), read)
        if plain != root:
            unpack_session(session_dir, session_input_dir(plain, subject, ses), layout)
        tree.sessions[f"{subject}_{ses}"] = folder_stats(session_input_dir(plain, subject, ses))
    tree.build_s = time.perf_counter() - started
    return tree


def unpack_session(session_dir: Path, target: Path, layout: SessionLayout) -> None:
    """The session's DICOM files linked, its archives unpacked, each at its output path (non-DICOM files left out)."""
    for path, _ in layout.files:
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        os.link(session_dir / path, target / path)
    for archive in layout.archives:
        shutil.unpack_archive(session_dir / archive, target / archive_destination(archive))


def template_reader(templates: dict[str, bytes]):
    """A `read` for write_session: a fresh dataset from cached bytes (named templates, else packaged files)."""

    @functools.cache
    def encoded(source: str) -> bytes:
        return templates[source] if source in templates else Path(packaged_path(source)).read_bytes()

    return lambda source: pydicom.dcmread(io.BytesIO(encoded(source)))


def encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def series(folder: str, source: str, count: int, start: int = 0) -> list[tuple[str, str]]:
    return [(f"{folder}/IM{i:05d}.dcm", source) for i in range(start, start + count)]


# ---------------------------------------------------------------------------------------------------------
# small: copies of MR_small (~10 KB) in 4 sessions of 2 subjects; the last session holds big_factor times more


def build_small(root: Path, per_session: int, big_factor: int) -> Tree:
    counts = {
        ("BENCH01", "01"): per_session,
        ("BENCH01", "02"): per_session,
        ("BENCH02", "01"): per_session,
        ("BENCH02", "02"): per_session * big_factor,
    }
    sessions = {
        key: SessionLayout(files=[(f"series{1 + i % 2}/MR{i:05d}.dcm", "MR_small.dcm") for i in range(count)])
        for key, count in counts.items()
    }
    return write_tree(root, root, sessions, template_reader({}))


# ---------------------------------------------------------------------------------------------------------
# large: per session one enhanced CT multi-frame of mf_frames 512x512 frames, then 512x512 CT slices


def tiled_ct() -> bytes:
    """CT_small's 128x128 pixels tiled 4x4: a 512x512 slice of 0.5 MB."""
    ds = read_packaged("CT_small.dcm")
    width = ds.Columns * 2  # bytes per row at 16 bits
    rows = [ds.PixelData[r * width : (r + 1) * width] * 4 for r in range(ds.Rows)]
    ds.PixelData = b"".join(rows) * 4
    ds.Rows, ds.Columns = ds.Rows * 4, ds.Columns * 4
    return encode(ds)


def big_multiframe(frames: int) -> bytes:
    """eCT_Supplemental (enhanced CT, 2 frames of 512x512) with its frames and per-frame groups repeated."""
    ds = read_packaged("eCT_Supplemental.dcm")
    count = int(ds.NumberOfFrames)
    size = len(ds.PixelData) // count
    originals = [ds.PixelData[i * size : (i + 1) * size] for i in range(count)]
    groups = list(ds.PerFrameFunctionalGroupsSequence)
    ds.PixelData = b"".join(originals[i % count] for i in range(frames))
    ds.PerFrameFunctionalGroupsSequence = [copy.deepcopy(groups[i % count]) for i in range(frames)]
    ds.NumberOfFrames = frames
    return encode(ds)


def build_large(root: Path, total_mb: int, sessions: int, mf_frames: int) -> Tree:
    templates = {"ct512": tiled_ct(), "multiframe": big_multiframe(mf_frames)}
    per_session = total_mb * MB // sessions
    slices = max(0, per_session - len(templates["multiframe"])) // len(templates["ct512"]) + 1
    keys = [(f"BENCH{11 + i // 2}", f"{1 + i % 2:02d}") for i in range(sessions)]
    layout = SessionLayout(files=[("MF/MF00001.dcm", "multiframe"), *series("CT", "ct512", slices)])
    return write_tree(root, root, dict.fromkeys(keys, layout), template_reader(templates))


# ---------------------------------------------------------------------------------------------------------
# mixed: sessions of many modalities, encodings and sizes, nested folders, archives of every kind

# (folder, source, share): a session's files are spread over these series by share.
MIXED_SERIES = [
    ("anat/t1_mprage", "MR_small.dcm", 8),
    ("anat/t2/big_endian", "MR_small_bigendian.dcm", 2),
    ("anat/t2/implicit", "MR_small_implicit.dcm", 3),
    ("ct/axial/thin", "CT_small.dcm", 6),
    ("mr/compressed/j2k", "MR_small_jp2klossless.dcm", 2),
    ("mr/compressed/jpeg_ls", "MR_small_jpeg_ls_lossless.dcm", 2),
    ("mr/compressed/rle", "MR_small_RLE.dcm", 2),
    ("nm/j2k", "JPEG2000.dcm", 1),
    ("nm/jpeg_lossless", "JPEG-LL.dcm", 1),
    ("sc/jpeg_baseline", "SC_rgb_jpeg_dcmtk.dcm", 1),
    ("func/bold/multiframe", "emri_small.dcm", 2),
    ("func/bold/multiframe_rle", "emri_small_RLE.dcm", 1),
    ("func/bold/multiframe_jpeg_ls", "emri_small_jpeg_ls_lossless.dcm", 1),
    ("func/bold/multiframe_j2k", "emri_small_jpeg_2k_lossless.dcm", 1),
    ("ct/enhanced", "eCT_Supplemental.dcm", 1),  # 1 MB, 2 frames of 512x512
]
# Share of each session in the total: sizes from small to large.
MIXED_WEIGHTS = (1, 2, 3, 4, 5, 6)


def nibabel_files() -> dict[str, bytes]:
    """Real Siemens and Philips files that nibabel ships as test data, if nibabel is installed (not imported)."""
    spec = importlib.util.find_spec("nibabel")
    if spec is None or not spec.submodule_search_locations:
        return {}
    folder = Path(spec.submodule_search_locations[0]) / "nicom" / "tests" / "data"
    return {path.name: gzip.decompress(path.read_bytes()) for path in sorted(folder.glob("*.dcm.gz"))}


def mixed_session(total: int, archive_suffix: str | None, series_list) -> SessionLayout:
    """`total` files over `series_list` by share; every third series goes into one archive, if any."""
    shares = sum(share for _, _, share in series_list)
    files, members = [], []
    for index, (folder, source, share) in enumerate(series_list):
        items = series(folder, source, max(1, round(total * share / shares)))  # share 0: one file
        (members if archive_suffix and index % 3 == 1 else files).extend(items)
    archives = {f"exports/scans{archive_suffix}": members} if members else {}
    return SessionLayout(files=files, archives=archives, other={"notes.txt": "Scan notes: nothing to report.\n"})


def build_mixed(root: Path, plain: Path, total_files: int) -> Tree:
    vendor = nibabel_files()
    # One of each vendor file (Philips' is a 23 MB multi-frame) in the 2nd and the 6th session.
    with_vendor = MIXED_SERIES + [(f"vendor/{name.split('.')[0]}", name, 0) for name in vendor]
    suffixes = (None, *ARCHIVE_SUFFIXES)  # the first session has no archive
    sessions = {}
    for i, weight in enumerate(MIXED_WEIGHTS):
        key = (f"MIXED{1 + i // 2:02d}", f"{1 + i % 2:02d}")
        files = total_files * weight // sum(MIXED_WEIGHTS)
        sessions[key] = mixed_session(files, suffixes[i], with_vendor if i % 4 == 1 else MIXED_SERIES)
    tree = write_tree(root, plain, sessions, template_reader(vendor))
    sources = sorted({source for _, source, _ in with_vendor})
    tree.notes.append(f"Sources: {', '.join(sources)}")
    if not vendor:
        tree.notes.append("nibabel is not installed: no vendor files")
    return tree


# ---------------------------------------------------------------------------------------------------------
# scale: many sessions of tiny non-DICOM files, only planned (dry run) and rerun with nothing to do


def build_scale(root: Path, sessions: int, files: int) -> Tree:
    """`sessions` sessions (10 per subject) of `files` 2-byte files each."""
    started = time.perf_counter()
    tree = Tree(root, root)
    for s in range(sessions):
        subject, ses = f"SCALE{s // 10:05d}", f"{s % 10:02d}"
        folder = session_input_dir(root, subject, ses)
        folder.mkdir(parents=True)
        for f in range(files):  # os.open: a quarter million files
            fd = os.open(folder / f"f{f:03d}.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, b"x\n")
            os.close(fd)
        tree.sessions[f"{subject}_{ses}"] = (files, 2 * files)
    tree.build_s = time.perf_counter() - started
    return tree


def add_archive_to_every_session(tree: Tree) -> None:
    """A session with an archive has one job more (unpack_archives): the plan's worst case."""
    data = archive_bytes("export.zip", [("f.txt", b"x\n")])
    for session in tree.sessions:
        subject, ses = session.rsplit("_", 1)
        write_file(session_input_dir(tree.root, subject, ses) / "export.zip", data)
