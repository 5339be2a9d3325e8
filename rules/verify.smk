# Verify the staged output against the input; only a clean session is moved into the output.
rule verify_session:
    input:
        staged=f"{SESSION_WORK}/staged.json",
        unpacked=f"{SESSION_WORK}/unpacked",
        anonymized=f"{SESSION_WORK}/anonymized",
        results=f"{SESSION_WORK}/results.json",
    output:
        session=directory(f"{OUTPUT}/{{subject}}/imaging/{{subject}}_{{ses}}"),
        report=f"{REPORTS_DIR}/{{subject}}/{{subject}}_{{ses}}.json",
    params:
        session=lambda w: session_of(w).name,
    log:
        f"{LOGS}/verify_session/{SESSION_LOG}",
    group:
        "session"
    threads: config["threads"]
    resources:
        mem_mb=session_mem_mb,
        runtime=session_runtime,
    conda:
        "../environment.yml"
    script:
        "../scripts/verify_session.py"
