"""A job process's start without what pydicom imports for work no job does.

pydicom imports numpy (to decode pixel data) and requests and tqdm (to download its own test files) when it is
itself imported, whether or not they are used; it works without them (its `have_numpy` path). No job decodes pixel
data or downloads anything, and these three cost half of each anonymize job's start, paid once per session: one
job over a one-file session took 0.64-0.78 CPU-s with them, 0.33-0.43 without (numpy also starts an OpenBLAS thread).
"""

from __future__ import annotations

import sys

NOT_NEEDED = ("numpy", "requests", "tqdm")


def skip_unneeded_imports() -> None:
    """From now on, in this process and the workers it forks, `import numpy` (etc.) raises ImportError, which
    pydicom expects and handles. A module already imported is left as it is. Call before pydicom is imported."""
    for name in NOT_NEEDED:
        sys.modules.setdefault(name, None)
