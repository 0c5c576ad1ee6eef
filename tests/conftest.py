"""Session fixtures: the real emulators on free loopback ports, started once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv.emulators import Azurite, MotoServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `pytest -n N --dist loadgroup` (make test), each test file runs on one worker, so its module
    fixtures (a stack, a deployed system) are built once; the fault suite's files share one world (the secret
    hygiene test reads what the scenarios left), so the whole folder goes to one worker."""
    for item in items:
        path = Path(str(item.path)).resolve()
        group = "tests/faults" if path.parent.name == "faults" else str(path)
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def emulator_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("emulators")


@pytest.fixture(scope="session")
def moto_server(emulator_dir: Path) -> Iterator[MotoServer]:
    with MotoServer.start(emulator_dir) as server:
        yield server


@pytest.fixture(scope="session")
def azurite(emulator_dir: Path) -> Iterator[Azurite]:
    with Azurite.start(emulator_dir) as server:
        yield server
