"""Put this checkout's root on sys.path, so scripts import its dicom_deid package in any environment.

Python puts a script's own folder (scripts/) first on its path, which makes this module importable; the
package then needs no installation on a cluster node or in a conda environment made from environment.yml.
"""

import sys
from pathlib import Path

root = str(Path(__file__).resolve().parents[1])
if root not in sys.path:
    sys.path.insert(0, root)
