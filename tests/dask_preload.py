"""Dask worker preload: give every worker (and every restarted one) the module `deepfake_notebook`.

Test processes pickle the notebook's functions by module name; a worker unpickles them by
importing that name, so it must exist there too.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebook import load_definitions  # noqa: E402

load_definitions()
