"""Makes the `shop` package importable when the repository's pytest runs these tests from its root."""

import sys
from pathlib import Path

EXAMPLE = str(Path(__file__).resolve().parents[1])
if EXAMPLE not in sys.path:
    sys.path.insert(0, EXAMPLE)
