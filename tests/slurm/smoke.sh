#!/usr/bin/env bash
# Smoke test: profiles/slurm against the single-node test cluster.
#
#   tests/slurm/smoke.sh
#
# 1. starts the cluster with tests/slurm/cluster.sh (unless one already answers),
# 2. runs tests/slurm/toy with --profile profiles/slurm from the repo root into a
#    temp --directory, twice: as is (group "session" => 3 Slurm jobs) and with
#    --group-components session=3 (=> 1 Slurm job),
# 3. checks the outputs (and that they were made inside a Slurm job) and counts the
#    sbatch submissions from Snakemake's log ("... submitted with SLURM jobid N"),
#    cross-checked with squeue (finished jobs stay visible for MinJobAge=300 s),
# 4. stops the cluster if, and only if, it started it.
#
# Environment:
#   SNAKEMAKE       snakemake executable (default: .venv/bin/snakemake of the repo if it
#                   has the Slurm plugin, else `snakemake` on PATH); it needs
#                   snakemake-executor-plugin-slurm==2.8.0 installed beside it
#   SMOKE_TIMEOUT   seconds allowed per snakemake run (default 300)
#   SMOKE_KEEP=1    keep the temp work dirs
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CLUSTER="$HERE/cluster.sh"
T_LIMIT="${SMOKE_TIMEOUT:-300}"
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

log() { printf '[smoke] %s\n' "$*" >&2; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

pick_snakemake() {
    if [[ -n "${SNAKEMAKE:-}" ]]; then
        echo "$SNAKEMAKE"
    elif [[ -x "$REPO/.venv/bin/snakemake" ]] &&
        "$REPO/.venv/bin/python" -c 'import snakemake_executor_plugin_slurm' 2>/dev/null; then
        echo "$REPO/.venv/bin/snakemake"
    else
        command -v snakemake || true
    fi
}

SMK="$(pick_snakemake)"
[[ -n "$SMK" && -x "$SMK" ]] || { log "no snakemake found (set SNAKEMAKE=...)"; exit 1; }
SMK_PY="$(dirname "$SMK")/python"
[[ -x "$SMK_PY" ]] || SMK_PY=python3
if ! "$SMK_PY" -c 'import snakemake_executor_plugin_slurm' 2>/dev/null; then
    log "$SMK has no Slurm executor plugin: pip install snakemake-executor-plugin-slurm==2.8.0"
    exit 1
fi
log "snakemake: $SMK ($("$SMK" --version)), plugin $("$SMK_PY" -c 'import importlib.metadata as m; print(m.version("snakemake-executor-plugin-slurm"))')"

STARTED=0
WORKDIRS=()
RUN_IDS=()
PASSED=0
FAILED=0

cleanup() {
    local rc=$?
    # a killed snakemake leaves its Slurm jobs behind: cancel them (job name = run id)
    local id
    for id in "${RUN_IDS[@]}"; do
        timeout 10 scancel --name "$id" 2>/dev/null || true
    done
    if ((STARTED)); then
        "$CLUSTER" stop || rc=1
    else
        log "cluster was already running before the smoke test: left running"
    fi
    if [[ "${SMOKE_KEEP:-0}" != 1 && $rc -eq 0 ]]; then
        rm -rf "${WORKDIRS[@]}"
    elif ((${#WORKDIRS[@]})); then
        log "work dirs kept: ${WORKDIRS[*]}"
    fi
    exit "$rc"
}
trap cleanup EXIT

# --- cluster -------------------------------------------------------------------
if "$CLUSTER" status >/dev/null 2>&1; then
    log "a Slurm cluster already answers; using it"
else
    t0=$EPOCHREALTIME
    STARTED=1 # set first: a start that fails half-way is still cleaned up by stop
    "$CLUSTER" start
    log "cluster start took $(since "$t0") s"
fi

# --- one toy run ------------------------------------------------------------------
# run_toy LABEL EXPECTED_SLURM_JOBS [extra snakemake args...]
run_toy() {
    local label="$1" expected="$2"
    shift 2
    local wd
    wd="$(mktemp -d /tmp/deid-slurm-smoke.XXXXXX)"
    WORKDIRS+=("$wd")
    mkdir -p "$wd/in"
    seq 20 >"$wd/in/s1.txt"
    seq 20 >"$wd/in/s2.txt"
    seq 500 >"$wd/in/s3.txt" # > 100 lines: extract asks for 2 threads
    local smk_log="$wd/snakemake.log"
    local t0 rc=0
    t0=$EPOCHREALTIME
    # -k: Snakemake ignores SIGTERM while it waits for Slurm jobs, so a hang needs SIGKILL
    (cd "$REPO" && timeout -k 15 "$T_LIMIT" "$SMK" -s tests/slurm/toy/Snakefile \
        --profile profiles/slurm --directory "$wd" "$@") >"$smk_log" 2>&1 || rc=$?
    local secs
    secs="$(since "$t0")"
    local run_id
    run_id="$(sed -n 's/^SLURM run ID: //p' "$smk_log" | head -1)"
    [[ -n "$run_id" ]] && RUN_IDS+=("$run_id")

    local problems=()
    if ((rc == 124 || rc == 137)); then
        problems+=("snakemake hung: killed after ${T_LIMIT}s")
    elif ((rc != 0)); then
        problems+=("snakemake exited $rc")
    fi
    local s want_lines want_threads
    for s in s1 s2 s3; do
        local f="$wd/out/$s/summary.txt"
        if [[ ! -s "$f" ]]; then
            problems+=("missing $f")
            continue
        fi
        want_lines=20 want_threads=1
        [[ $s == s3 ]] && want_lines=500 want_threads=2
        grep -qx "session=$s" "$f" || problems+=("$s: wrong session line")
        grep -qx "$want_lines" "$f" || problems+=("$s: line count is not $want_lines")
        grep -q "threads=$want_threads " "$f" || problems+=("$s: threads not $want_threads")
        grep -Eq 'slurm_job=[0-9]+ ' "$f" || problems+=("$s: extract did not run inside a Slurm job")
        grep -Eq "cpus=$want_threads$" "$f" || problems+=("$s: Slurm did not give $want_threads CPUs")
        grep -Eq '^summary_slurm_job=[0-9]+$' "$f" || problems+=("$s: summarize not inside a Slurm job")
    done
    local submitted distinct_jobs in_squeue="?"
    submitted="$(grep -c 'has been submitted with SLURM jobid' "$smk_log" || true)"
    distinct_jobs="$(cat "$wd"/out/*/summary.txt 2>/dev/null | sed -n 's/^summary_slurm_job=//p' | sort -u | wc -l)"
    if [[ -n "$run_id" ]]; then
        in_squeue="$(timeout 10 squeue -h --states=all --name "$run_id" -o %i 2>/dev/null | wc -l || echo '?')"
    fi
    [[ "$submitted" == "$expected" ]] || problems+=("submitted $submitted Slurm jobs, expected $expected")
    [[ "$distinct_jobs" == "$expected" ]] || problems+=("outputs came from $distinct_jobs Slurm jobs, expected $expected")
    [[ "$in_squeue" == "$expected" ]] || problems+=("squeue shows $in_squeue jobs of run $run_id, expected $expected")

    if ((${#problems[@]})); then
        FAILED=$((FAILED + 1))
        log "FAIL $label (${secs}s): ${problems[*]}"
        log "--- last lines of $smk_log"
        tail -n 40 "$smk_log" >&2 || true
    else
        PASSED=$((PASSED + 1))
        log "ok   $label: ${secs}s, $submitted Slurm job(s) submitted (squeue: $in_squeue)"
    fi
}

run_toy "toy, group per session" 3
run_toy "toy, --group-components session=3" 1 --group-components session=3

echo "slurm smoke: $PASSED passed, $FAILED failed"
((FAILED == 0))
