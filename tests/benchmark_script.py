"""Load a script of benchmarks/ as a module, so that tests call its functions (the scripts are not a package)."""
import importlib.util
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_script(name: str):
    """benchmarks/NAME.py as a module; the tests that use it fail at once, naming the file, if it is gone."""
    path = BENCHMARKS / f"{name}.py"
    assert path.is_file(), f"{path} is missing: the tests of benchmarks/{name}.py have nothing to test"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
