"""Make a verified session appear in the output in one step: a folder (mirrored layout) or a zip (data2bids)."""

from __future__ import annotations

import errno
import os
import shutil
import zipfile
from pathlib import Path

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
