"""The package's shape, kept by tests: what ships in the core layer, where the SDKs may be imported, how large
a module may grow."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "azs3copy" / "src" / "azs3copy"
RUFF = Path(sys.executable).parent / "ruff"
MAX_MODULE_LINES = 600


def ruff_codes(text: str, path: str) -> set[str]:
    """The codes ruff reports for `text` as if it were the file at `path` (the repository's configuration)."""
    result = subprocess.run(
        [str(RUFF), "check", "--output-format", "concise", "--stdin-filename", path, "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    return {word.rstrip(":") for line in result.stdout.splitlines() for word in line.split()[1:2]}


@pytest.mark.parametrize("module", ["boto3", "botocore.exceptions", "azure.storage.blob", "azure.identity"])
def test_lint_refuses_an_sdk_import_in_a_step_and_allows_it_in_a_backend(module: str) -> None:
    text = f"from {module} import Anything\n\nprint(Anything)\n"
    assert "TID251" in ruff_codes(text, "layers/azs3copy/src/azs3copy/steps/download.py")
    assert "TID251" in ruff_codes(text, "layers/azs3copy/src/azs3copy/ledger.py")
    assert "TID251" not in ruff_codes(text, "layers/azs3copy/src/azs3copy/backends/s3.py")


def test_no_module_of_the_package_is_over_600_lines() -> None:
    sizes = {
        path.relative_to(PACKAGE).as_posix(): len(path.read_text().splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert sizes, "no modules found"
    assert {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES} == {}


def test_the_core_layer_is_the_package_folder_as_it_is_with_no_local_environment_or_fakes(
    tmp_path: Path,
) -> None:
    spec = importlib.util.spec_from_file_location("build_layers", ROOT / "scripts" / "build_layers.py")
    assert spec is not None and spec.loader is not None
    build_layers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_layers)
    build_layers.build_core_layer(tmp_path / "core.zip")
    with zipfile.ZipFile(tmp_path / "core.zip") as archive:
        shipped = {name for name in archive.namelist() if not name.endswith("/")}
    on_disk = {
        f"python/azs3copy/{path.relative_to(PACKAGE).as_posix()}"
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert shipped == on_disk
    assert not [name for name in shipped if "devenv" in name or "fakes" in name or "/local/" in name]
