# One row per session, and a page a person reads, both from the session reports.
# Seconds of work: on a cluster they run on the submitting machine instead of waiting in the queue.
# `script:`, not a shell command: thousands of report paths would not fit one command line.
localrules:
    dataset_summary,
    html_report,


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


rule html_report:
    input:
        reports=all_session_reports(),
    output:
        html=HTML_REPORT,
    params:
        config=config,
    log:
        f"{LOGS}/html_report.log",
    conda:
        "../environment.yml"
    script:
        "../scripts/html_report.py"
