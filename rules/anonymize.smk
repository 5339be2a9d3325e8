# Anonymize every staged file with dicognito, strip the removed tags, and check each file as written.
rule anonymize_session:
    input:
        staged=f"{SESSION_WORK}/staged.json",
        unpacked=f"{SESSION_WORK}/unpacked",
        key=KEY,
    output:
        anonymized=temp(directory(f"{SESSION_WORK}/anonymized")),
        results=temp(f"{SESSION_WORK}/results.json"),
    params:
        session=SESSION_NAME,
        keep=config["keep"],
        private_tags=config["private_tags"],
        patient_name=PATIENT_NAME,
        crosswalk_file=config["crosswalk_file"],
    log:
        f"{LOGS}/anonymize_session/{SESSION_LOG}",
    group:
        "session"
    threads: config["threads"]
    resources:
        mem_mb=SESSION_MEM_MB,
        runtime=session_runtime,
        disk_mb=session_disk_mb,
    conda:
        "../environment.yml"
    script:
        "../scripts/anonymize_session.py"
