# Stage 4, report (dicom_deid/stages/report.py): one row per session, and a page a person reads, listing every
# discovered session with its state. Seconds of work: on a cluster they run on the submitting machine instead of
# waiting in the queue. `script:`, not a shell command: thousands of report paths would not fit one command line.
# These rules run when every session was published; when a job failed, the Snakefile's onerror: handler builds
# the same two files with the same function (build_reports_after_failure in rules/common.smk).
localrules:
    dataset_summary,
    html_report,


rule dataset_summary:
    input:
        reports=every_session(PATHS.session_report),
    output:
        summary=report(PATHS.summary, caption="../docs/report/summary.rst", category="De-identification"),
    log:
        PATHS.log("dataset_summary"),
    conda:
        "../environment.yml"
    params:
        sessions=SESSION_KEYS,
        gone=GONE_KEYS,
        config=config,
    script:
        "../scripts/dataset_summary.py"


rule html_report:
    input:
        reports=every_session(PATHS.session_report),
    output:
        html=report(PATHS.html_report, caption="../docs/report/page.rst", category="De-identification"),
    log:
        PATHS.log("html_report"),
    conda:
        "../environment.yml"
    params:
        sessions=SESSION_KEYS,
        gone=GONE_KEYS,
        config=config,
    script:
        "../scripts/html_report.py"
