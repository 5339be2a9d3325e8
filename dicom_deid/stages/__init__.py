"""The workflow's stages, one module each, in the order a session passes through them: unpack, anonymize, publish
(verify and publish), report. Each is called by the script of the rule of the same name."""
