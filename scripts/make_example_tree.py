"""Write the demo data2bids imaging tree (real DICOMs with planted identifying values) into a folder."""

import argparse
import sys
from pathlib import Path

# Let the script run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dicom_deid.example_tree import build_example_tree


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("destination", type=Path, help="folder to create (must be absent or empty)")
    args = parser.parse_args(argv)
    tree = build_example_tree(args.destination)
    for (subject, session), outputs in tree.expected_dicoms.items():
        others = len(tree.non_dicom[(subject, session)])
        print(f"{subject}/{session}: {len(outputs)} DICOM instances, {others} other files")


if __name__ == "__main__":
    main()
