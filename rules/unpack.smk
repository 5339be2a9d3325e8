# Stage a session: unpack its archives into scratch and list every file to de-identify.
rule unpack_archives:
    input:
        session=SESSION_INPUT,
    output:
        unpacked=temp(directory(f"{SESSION_WORK}/unpacked")),
        staged=temp(f"{SESSION_WORK}/staged.json"),
    params:
        # Reruns the session when any file below it changes (the folder's own mtime would not tell).
        fingerprint=lambda w: session_of(w).fingerprint,
        limits=config["archives"],
    log:
        f"{LOGS}/unpack_archives/{SESSION_LOG}",
    group:
        "session"
    resources:
        disk_mb=session_disk_mb,
    conda:
        "../environment.yml"
    script:
        "../scripts/unpack_archives.py"
