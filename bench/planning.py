"""Planning at scale: `snakemake -n` and a rerun with nothing to do over thousands of sessions, each also as a
ratio of what Snakemake itself needs to plan a bare chain of 4 trivial rules over the same sessions."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.measure import SNAKEMAKE, Run, fastest, run_timed, snakemake_cmd, workflow_config, write_key
from bench.trees import Tree, add_archive_to_every_session
from dicom_deid.paths import Paths

# Written into the bench's temporary folder. Discovery scans the same input tree with os.scandir.
BARE_CHAIN = """
import os


def sessions(input_dir):
    found = []
    with os.scandir(input_dir) as subjects:
        for subject in subjects:
            imaging = os.path.join(subject.path, "imaging")
            if subject.is_dir() and os.path.isdir(imaging):
                with os.scandir(imaging) as entries:
                    found += [(subject.name, entry.name) for entry in entries if entry.is_dir()]
    return found


SESSIONS = sessions(config["input_dir"])


wildcard_constraints:
    subject="[^/]+",
    session="[^/]+",


rule all:
    input:
        [f"d/{subject}/{session}" for subject, session in SESSIONS],


rule a:
    input:
        config["input_dir"] + "/{subject}/imaging/{session}",
    output:
        directory("a/{subject}/{session}"),
    shell:
        "mkdir -p {output}"
"""
for _previous, _rule in zip("abc", "bcd", strict=False):
    BARE_CHAIN += f'''

rule {_rule}:
    input:
        "{_previous}/{{subject}}/{{session}}",
    output:
        directory("{_rule}/{{subject}}/{{session}}"),
    shell:
        "mkdir -p {{output}}"
'''

PLANNING_ROUNDS = 3  # dry runs of the workflow and of the bare chain, alternating; the fastest of each counts
NOOP_TIMEOUT_S = 120  # should the rerun find work after all, it would start thousands of jobs


@dataclass
class Scale:
    tree: Tree
    runs: dict[str, Run]

    @property
    def problems(self) -> list[str]:
        return [problem for run in self.runs.values() for problem in run.problems]

    def ratio(self, label: str) -> float:
        return self.runs[label].seconds / self.runs["bare"].seconds


def create_final_outputs(case_dir: Path, tree: Tree) -> None:
    """What a finished run leaves: each published session folder and report, the summary and the HTML page
    (scratch folders are temp() and gone). Not its metadata records in .snakemake/."""
    paths = Paths.from_config({**workflow_config(case_dir, tree.root), "output_layout": "mirror"})
    for session in tree.sessions:
        subject, ses = session.rsplit("_", 1)
        Path(paths.session_output(subject, ses)).mkdir(parents=True)
        Path(paths.session_report(subject, ses)).parent.mkdir(parents=True, exist_ok=True)
        Path(paths.session_report(subject, ses)).touch()
    Path(paths.summary).touch()
    Path(paths.html_report).touch()


def measure_scale(tree: Tree, case_dir: Path, workflow_dir: Path, cores: int) -> Scale:
    runs: dict[str, Run] = {}
    write_key(case_dir)
    logs = case_dir / "runs"

    def workflow(label: str, *extra: str, timeout: float | None = None) -> Run:
        print(f"[scale] {label} ...", flush=True)
        runs[label] = run_timed(
            label,
            snakemake_cmd(case_dir, tree.root, cores, *extra),
            logs / f"{label}.log",
            workflow_dir,
            timeout=timeout,
        )
        return runs[label]

    bare = case_dir / "bare"
    bare.mkdir()
    (bare / "Snakefile").write_text(BARE_CHAIN)
    # The two dry runs one after the other, 3 times, each the fastest of its own: this machine's speed drifts by
    # 10-20 % within minutes, as much as the ratio's distance from 1.
    dry_runs, bare_runs = [], []
    for _ in range(PLANNING_ROUNDS):
        dry_runs.append(workflow("dryrun", "-n"))
        print("[scale] bare chain dry run ...", flush=True)
        bare_cmd = [SNAKEMAKE, "-n", "--cores", str(cores), "--config", f"input_dir={tree.root}"]
        bare_runs.append(run_timed("bare", bare_cmd, logs / "bare.log", bare))
    runs["dryrun"] = fastest(dry_runs)
    runs["bare"] = fastest(bare_runs)
    # A finished run's outputs, made without running 10,000 jobs. Its metadata records cannot be had so:
    # `--touch` would take minutes here (Snakemake schedules each of the 10,000 jobs), so the rerun has none.
    create_final_outputs(case_dir, tree)
    noop = workflow("noop", timeout=NOOP_TIMEOUT_S)
    if "Nothing to be done" not in noop.log_text():
        noop.problems.append(f"the rerun found work to do (log: {noop.log})")
    add_archive_to_every_session(tree)
    workflow("dryrun_archives", "-n")
    shutil.rmtree(bare)
    return Scale(tree, runs)
