"""A job process's start without what pydicom imports for work no job does.

pydicom imports numpy (to decode pixel data) and requests and tqdm (to download its own test files) when it is
itself imported, whether or not they are used; it works without them (its `have_numpy` path). No job decodes pixel
data or downloads anything, and these three are 0.17 s of the 0.5 s each anonymize job takes to start (measured with
`python -X importtime`), paid once per session.
"""

from __future__ import annotations

import sys

NOT_NEEDED = ("numpy", "requests", "tqdm")


def skip_unneeded_imports() -> None:
    """From now on, in this process and the workers it forks, `import numpy` (etc.) raises ImportError, which
    pydicom expects and handles. A module already imported is left as it is. Call before pydicom is imported."""
    for name in NOT_NEEDED:
        sys.modules.setdefault(name, None)
