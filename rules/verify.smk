# Gather the per-file checks, check the session as a whole; only a clean session enters the output.
rule verify_session:
    input:
        staged=f"{SESSION_WORK}/staged.json",
        unpacked=f"{SESSION_WORK}/unpacked",
        anonymized=f"{SESSION_WORK}/anonymized",
        results=f"{SESSION_WORK}/results.json",
    output:
        session=SESSION_OUTPUT,
        report=f"{REPORTS_DIR}/{{subject}}/{{subject}}_{{ses}}.json",
    params:
        session=SESSION_NAME,
        settings=SETTINGS,
    log:
        f"{LOGS}/verify_session/{SESSION_LOG}",
    group:
        "session"
    conda:
        "../environment.yml"
    script:
        "../scripts/verify_session.py"
