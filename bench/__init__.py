"""The workflow's benchmark: `python -m bench --help` (see __main__.py)."""
