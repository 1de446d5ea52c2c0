"""The notebook's shape: short cells, prose before code, the card's order, no hidden configuration."""

import ast
import json

import pytest
from notebook import NOTEBOOK

CELLS = json.loads(NOTEBOOK.read_text())["cells"]
MAX_LINES = 40


def source(cell):
    return "".join(cell["source"])


def tagged(tag):
    return [cell for cell in CELLS if tag in cell["metadata"].get("tags", [])]


def parameter_names():
    """The names the parameters cell assigns."""
    (cell,) = tagged("parameters")
    return {target.id for node in ast.parse(source(cell)).body if isinstance(node, ast.Assign)
            for target in node.targets}


def test_no_cell_is_longer_than_forty_lines():
    long = [(i, cell["cell_type"], len(source(cell).splitlines())) for i, cell in enumerate(CELLS)
            if len(source(cell).splitlines()) > MAX_LINES]
    assert not long


def test_every_code_cell_has_prose_before_it():
    orphans = [i for i in range(1, len(CELLS))
               if CELLS[i]["cell_type"] == "code" and CELLS[i - 1]["cell_type"] == "code"]
    assert not orphans and CELLS[0]["cell_type"] == "markdown"


def test_definitions_never_read_the_configuration():
    parameters = parameter_names()
    assert {"INIT_MODE", "FEATURES", "N_JOBS", "CACHE_DIR", "FUTURE_DIR", "OUTPUT_CSV"} <= parameters
    read = {(node.id, i) for i, cell in enumerate(CELLS) if "definitions" in cell["metadata"].get("tags", [])
            for node in ast.walk(ast.parse(source(cell))) if isinstance(node, ast.Name) and node.id in parameters}
    assert not read


def test_no_cell_reassigns_a_parameter():
    parameters = parameter_names()
    assigned = set()
    for i, cell in enumerate(CELLS):
        if cell["cell_type"] != "code" or "parameters" in cell["metadata"].get("tags", []):
            continue
        tree = ast.parse(source(cell))
        assigned |= {(node.id, i) for node in ast.walk(tree)
                     if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id in parameters}
    assert not assigned


def first_definition(name):
    """The index of the cell that defines `name` (a function or a class)."""
    for i, cell in enumerate(CELLS):
        if cell["cell_type"] == "code":
            for node in ast.parse(source(cell)).body:
                if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name:
                    return i
    pytest.fail(f"{name} is not defined")


def test_definitions_come_in_the_cards_order():
    """Plot and data utilities, the sigmoid, gradient descent, the search, then the LogisticModel."""
    order = [max(first_definition("read_image"), first_definition("plot_spectrum")),
             first_definition("sigmoid"), first_definition("gradient_descent"),
             first_definition("validation_curves"), first_definition("LogisticModel")]
    assert order == sorted(order) and len(set(order)) == len(order)


def test_definitions_come_before_the_run():
    definitions = [i for i, cell in enumerate(CELLS) if "definitions" in cell["metadata"].get("tags", [])]
    (parameters,) = [i for i, cell in enumerate(CELLS) if "parameters" in cell["metadata"].get("tags", [])]
    untagged = [i for i, cell in enumerate(CELLS) if cell["cell_type"] == "code" and not cell["metadata"].get("tags")]
    assert parameters < min(definitions) and max(definitions) < min(untagged)


def test_every_figure_has_alt_text():
    """nbconvert's classic template (`make run`) writes a cell's "alt" metadata on its figures; the
    committed run's figures show which cells draw."""
    drawing = [cell for cell in CELLS if cell["cell_type"] == "code"
               and any("image/png" in output.get("data", {}) for output in cell.get("outputs", []))]
    assert drawing and all(len(cell["metadata"].get("alt", "")) > 40 for cell in drawing)
