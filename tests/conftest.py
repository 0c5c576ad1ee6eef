"""Session fixtures: the real emulators on free loopback ports, started once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devenv.emulators import Azurite, MotoServer


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under `pytest -n N` (make test), each test file runs on one worker, so its module fixtures (a stack, a
    deployed system) are built once; the fault suite's files share one world (the secret hygiene test reads
    what the scenarios left), so the whole folder goes to one worker. (xdist's own `--dist loadgroup` groups
    nothing under pytest 9: it renames test ids through an attribute pytest 9 no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "tests/faults" if path.startswith("tests/faults/") else path

    return ByFile(config, log)


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
