"""Benchmark the de-identification workflow against dicognito and plain pydicom on this machine.

Run from the checkout:  .venv/bin/python -m bench [--quick] [--out bench/results/latest.md]

Cases (trees built in a temporary folder by dicom_deid.example_tree from packaged DICOMs):
  small  copies of MR_small (~10 KB) in 4 sessions; one session is 4x bigger than the others
  large  512x512 CT slices plus one enhanced multi-frame per session
  mixed  6 sessions of mixed modalities, encodings and sizes, nested folders, archives of every kind
  scale  thousands of sessions of tiny files: `snakemake -n` and a no-op rerun, also as ratios of a bare
         chain of 4 trivial rules planned over the same sessions
Each throughput case runs the workflow (`snakemake --cores N`, all stages), `python -m dicognito --in-place`
(1 process, then N side by side on every N-th file) on a copy with archives unpacked, and a pydicom
read+save loop. Snakemake runs from a snapshot of the checkout's workflow files; the demo tree runs through it
first as a preflight. `--profile-files N` instead profiles the workflow's stages in-process.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import measure, trees
from bench.measure import measure_case, run_workflow, snapshot_workflow
from bench.planning import measure_scale
from bench.report import machine_info, report
from dicom_deid.example_tree import build_example_tree

ROOT = Path(__file__).resolve().parents[1]
SIZES = {
    "full": {"small_per_session": 300, "large_mb": 520, "mf_frames": 96, "mixed_files": 2000, "scale_sessions": 5000},
    "quick": {"small_per_session": 60, "large_mb": 100, "mf_frames": 32, "mixed_files": 300, "scale_sessions": 500},
}


def preflight(base: Path, workflow_dir: Path, cores: int, results: Path) -> list[str]:
    """The demo tree through the workflow: a broken checkout fails here, in seconds."""
    case_dir = base / "preflight"
    tree = build_example_tree(case_dir / "input")
    instances = sum(len(outputs) for outputs in tree.expected_dicoms.values())
    run = run_workflow(case_dir, tree.root, workflow_dir, cores, len(tree.expected_dicoms), instances)
    keep_failed_logs(run.problems, case_dir, results)
    return run.problems


def keep_failed_logs(problems: list[str], case_dir: Path, results: Path) -> None:
    """A failed run's logs go beside the report (the temporary folder is removed)."""
    if problems:
        for logs in ("runs", "logs"):
            if (case_dir / logs).is_dir():
                shutil.copytree(case_dir / logs, results / f"failed-{case_dir.name}" / logs, dirs_exist_ok=True)


def build_case(name: str, case_dir: Path, sizes: dict) -> trees.Tree:
    if name == "small":
        return trees.build_small(case_dir / "input", sizes["small_per_session"], big_factor=4)
    if name == "large":
        return trees.build_large(case_dir / "input", sizes["large_mb"], sessions=3, mf_frames=sizes["mf_frames"])
    return trees.build_mixed(case_dir / "input", case_dir / "plain", sizes["mixed_files"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke check (~2 min)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.md", help="markdown report")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()), help="for the temporary folder")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores, and parallel dicognito processes")
    parser.add_argument("--cases", default="small,large,mixed,scale", help="a subset of small,large,mixed,scale")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--profile-files",
        type=int,
        metavar="N",
        help="only profile the workflow's stages in-process over N files (profile.txt beside --out)",
    )
    parser.add_argument(
        "--workflow-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="passed on to the workflow's --config, e.g. profile=basic (repeatable)",
    )
    args = parser.parse_args(argv)

    if args.profile_files:
        from bench.profiling import profile

        text = profile(args.profile_files, args.scratch)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_name("profile.txt").write_text(text)
        print(text)
        return 0

    mode = "quick" if args.quick else "full"
    wanted = args.cases.split(",")
    started = time.perf_counter()
    info = machine_info(ROOT)
    base = Path(tempfile.mkdtemp(prefix="dicom-deid-bench-", dir=args.scratch)).resolve()
    print(f"benchmark ({mode}) in {base}", flush=True)
    cases, scale = [], None
    try:
        workflow_dir = snapshot_workflow(ROOT, base / "workflow")
        # The preflight runs the default configuration: the demo tree holds secondary-capture files, which
        # profile basic holds back by design.
        problems = preflight(base, workflow_dir, args.cores, args.out.parent)
        measure.EXTRA_CONFIG[:] = args.workflow_config
        if problems:
            print("preflight failed on the demo tree:", *problems, sep="\n  ")
            return 1
        for name in ("small", "large", "mixed"):
            if name in wanted:
                tree = build_case(name, base / name, SIZES[mode])
                cases.append(measure_case(name, tree, base / name, workflow_dir, args.cores))
                keep_failed_logs(cases[-1].problems, base / name, args.out.parent)
                if not args.keep:
                    shutil.rmtree(base / name)
        if "scale" in wanted:
            print("[scale] building the tree ...", flush=True)
            tree = trees.build_scale(base / "scale" / "input", SIZES[mode]["scale_sessions"], files=50)
            scale = measure_scale(tree, base / "scale", workflow_dir, args.cores)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    text = report(info, mode, args.cores, cases, scale, time.perf_counter() - started)
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
