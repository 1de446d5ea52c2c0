"""Load the notebook's `definitions` cells as an importable module (never the parameters: the
definitions must not need them).

The module is registered in sys.modules, so worker processes can pickle its functions by name.
"""

import json
import sys
import types
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parent.parent / "DeepFakeLogReg.ipynb"
MODULE_NAME = "deepfake_notebook"


def cell_sources(tags):
    """The sources of the code cells that carry any of `tags`, in notebook order."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    return ["".join(cell["source"]) for cell in cells
            if cell["cell_type"] == "code" and set(tags) & set(cell["metadata"].get("tags", []))]


def load_definitions():
    """Exec the definitions cells once into the module `deepfake_notebook`."""
    if MODULE_NAME in sys.modules:
        return sys.modules[MODULE_NAME]
    module = types.ModuleType(MODULE_NAME)
    module.__file__ = str(NOTEBOOK)
    sys.modules[MODULE_NAME] = module
    for number, source in enumerate(cell_sources(["definitions"])):
        exec(compile(source, f"{NOTEBOOK.name}:cell{number}", "exec"), module.__dict__)
    return module
