# One row per session, from the session reports.
rule dataset_summary:
    input:
        reports=all_session_reports(),
    output:
        summary=SUMMARY,
    log:
        f"{LOGS}/dataset_summary.log",
    conda:
        "../environment.yml"
    script:
        "../scripts/dataset_summary.py"
