# Stage a session: unpack its archives into scratch and list every file to de-identify.
rule unpack_archives:
    input:
        session=SESSION_INPUT,
    output:
        staged=temp(directory(STAGED)),
    params:
        # Reruns the session when any file below it changes (the folder's own mtime would not tell).
        fingerprint=lambda w: session_of(w).fingerprint,
        limits=json.dumps(config["archives"]),
    log:
        f"{LOGS}/unpack_archives/{SESSION_LOG}",
    conda:
        "../environment.yml"
    shell:
        "unpack_archives.py --session {input.session:q} --staged {output.staged:q}"
        " --limits {params.limits:q} --log {log:q}"
