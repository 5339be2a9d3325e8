"""`--profile-files N`: per-file costs in one process, then cProfile of the workflow's anonymize stage and
the publish stage's session check, over N copies of MR_small in one session."""

from __future__ import annotations

import cProfile
import io
import pstats
import shutil
import tempfile
import time
from pathlib import Path

import pydicom
from dicognito.anonymizer import Anonymizer

from bench.measure import SEED
from bench.trees import MB, build_large, build_small
from dicom_deid.paths import session_input_dir
from dicom_deid.records import Policy
from dicom_deid.stages.anonymize import anonymize_session
from dicom_deid.stages.unpack import list_sources
from dicom_deid.verify.session import check_session

ANONYMIZE = "workflow: anonymize stage (1 worker, in-process)"
CHECK = "workflow: publish stage's session check"


def steps(session_dir: Path, files: list[Path], scratch: Path) -> dict[str, callable]:
    """Plain pydicom, the dicognito API, and the workflow's stages over the same files."""
    sources = list_sources(session_dir)
    sources.files = [(rel, src) for rel, src in sources.files if Path(src) in set(files)]
    out = scratch / "anonymized"
    results = []

    def pydicom_read_save() -> None:
        for i, path in enumerate(files):
            pydicom.dcmread(path).save_as(scratch / f"{i}.dcm")

    def dicognito_api() -> None:
        anonymizer = Anonymizer(seed=SEED)
        for i, path in enumerate(files):
            ds = pydicom.dcmread(path)
            anonymizer.anonymize(ds)
            ds.save_as(scratch / f"{i}.dcm")

    def anonymize() -> None:
        shutil.rmtree(out, ignore_errors=True)
        policy = Policy(seed=SEED * 2, keep=(), private_tags="keep")
        results[:] = anonymize_session(sources, out, policy, workers=1, session="BENCH")

    def check() -> None:
        failed = {name: c.failures for name, c in check_session(sources, results, out).items() if c.failures}
        if failed:
            print(f"session check failures: {failed}")

    return {
        "pydicom dcmread only": lambda: [pydicom.dcmread(path) for path in files],
        "pydicom read+save": pydicom_read_save,
        "dicognito API: read+anonymize+save": dicognito_api,
        ANONYMIZE: anonymize,
        CHECK: check,
    }


def cost_table(title: str, session_dir: Path, files: list[Path], scratch: Path) -> str:
    size = sum(path.stat().st_size for path in files) / MB
    lines = [
        f"{title}: {len(files)} files, {size:.1f} MB, one process, no profiler",
        "",
        "| step | ms/file | files/s | MB/s |",
        "|---|---:|---:|---:|",
    ]
    for label, call in steps(session_dir, files, scratch).items():
        started = time.perf_counter()
        call()
        elapsed = time.perf_counter() - started
        lines.append(
            f"| {label} | {1000 * elapsed / len(files):.2f} | {len(files) / elapsed:.0f} | {size / elapsed:.0f} |"
        )
    return "\n".join(lines) + "\n"


def profile(n_files: int, scratch: Path, top: int = 25) -> str:
    base = Path(tempfile.mkdtemp(prefix="dicom-deid-profile-", dir=scratch))
    try:
        small = session_input_dir(build_small(base / "small", n_files, 1).root, "BENCH01", "01")
        large = session_input_dir(build_large(base / "large", 60, 1, 96).root, "BENCH11", "01")
        small_files = sorted(p for p in small.rglob("*.dcm"))
        texts = [
            cost_table("MR_small copies", small, small_files, base),
            cost_table("512x512 CT slices (0.5 MB)", large, sorted(large.rglob("CT/*.dcm")), base),
            cost_table("one 96-frame enhanced CT (48 MB)", large, sorted(large.rglob("MF/*.dcm")), base),
        ]
        calls = steps(small, small_files, base)
        for label in (ANONYMIZE, CHECK):
            profiler = cProfile.Profile()
            profiler.runcall(calls[label])
            for sort in ("tottime", "cumulative"):
                buffer = io.StringIO()
                pstats.Stats(profiler, stream=buffer).strip_dirs().sort_stats(sort).print_stats(top)
                texts.append(f"===== {label}: {len(small_files)} MR_small files, sorted by {sort}\n{buffer.getvalue()}")
        return "\n".join(texts)
    finally:
        shutil.rmtree(base, ignore_errors=True)
