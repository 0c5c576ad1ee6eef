"""Session fixtures: the real emulators on free loopback ports, started once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv.emulators import Azurite, MotoServer


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
