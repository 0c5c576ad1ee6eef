"""Build the Lambda layers and function zips that Terraform deploys, reproducibly.

    build_layers.py layers [--arch arm64] [--python-version 3.12]   -> build/layers/{azure-sdk,core}.zip
    build_layers.py functions                                       -> build/functions/<dir>.zip

The same inputs give the same bytes (sorted entries, fixed timestamps and permissions), so Terraform's
`filebase64sha256()` only changes when the code does. A zip whose inputs are unchanged is not rebuilt.

Beside azure-sdk.zip, whose wheels hold compiled code, azure-sdk.json says which Lambda architecture and
Python version they were chosen for; Terraform's layers module refuses to plan when they are not the
functions' own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SDK_REQUIREMENTS = ROOT / "layers" / "azure-sdk" / "requirements.txt"
CORE_SOURCE = ROOT / "layers" / "azs3copy" / "src" / "azs3copy"
LAMBDAS = ROOT / "lambdas"

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644
DIR_MODE = 0o040755

# Wheels that run on the Lambda runtime (Amazon Linux 2023, glibc 2.34) for each architecture.
PLATFORMS = {
    "arm64": ["manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64"],
    "x86_64": ["manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64"],
}


def _skipped(path: Path) -> bool:
    return "__pycache__" in path.parts or path.suffix in {".pyc", ".pyo"}


def tree_entries(base: Path, prefix: str = "") -> Iterator[tuple[str, Path]]:
    """(name in the zip, file on disk) for every file under `base`, skipping caches."""
    for path in base.rglob("*"):
        rel = path.relative_to(base)
        if not path.is_file() or _skipped(rel):
            continue
        yield prefix + rel.as_posix(), path


def write_zip(entries: Iterable[tuple[str, Path]], out: Path) -> None:
    """Write a zip whose bytes depend only on the entries' names and contents."""
    out.parent.mkdir(parents=True, exist_ok=True)
    files = dict(entries)
    dirs = {"/".join(name.split("/")[:i]) + "/" for name in files for i in range(1, name.count("/") + 1)}
    partial = out.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name in sorted(dirs | set(files)):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.create_system = 3
            if name in dirs:
                info.external_attr = DIR_MODE << 16
                archive.writestr(info, b"")
            else:
                info.external_attr = FILE_MODE << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, files[name].read_bytes(), compresslevel=9)
    partial.replace(out)


def inputs_digest(parts: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def up_to_date(out: Path, digest: str) -> bool:
    stamp = out.with_suffix(".inputs")
    return out.exists() and stamp.exists() and stamp.read_text().strip() == digest


def shown(path: Path) -> str:
    """The path as printed: relative to the repository when it is inside it (--out may be anywhere)."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def mark_built(out: Path, digest: str) -> None:
    out.with_suffix(".inputs").write_text(digest + "\n")
    print(f"built {shown(out)} ({out.stat().st_size} bytes)")


def pinned_names(requirements: Path) -> set[str]:
    names = set()
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, _ = line.partition("==")
            if not sep:
                raise SystemExit(f"{requirements}: {line!r} is not pinned with ==")
            names.add(_normalise(name))
    return names


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def write_built_for(out: Path, arch: str, python_version: str) -> None:
    """<layer>.json beside the zip: what its wheels run on, for Terraform to compare with the functions."""
    built_for = {"architecture": arch, "python_version": python_version, "platforms": PLATFORMS[arch]}
    out.with_suffix(".json").write_text(json.dumps(built_for, indent=2) + "\n")


def build_sdk_layer(out: Path, arch: str, python_version: str) -> None:
    platforms = PLATFORMS[arch]
    digest = inputs_digest(
        [SDK_REQUIREMENTS.read_bytes(), arch.encode(), python_version.encode(), Path(__file__).read_bytes()]
    )
    if up_to_date(out, digest):
        write_built_for(out, arch, python_version)  # the digest covers both: the zip is built for them
        print(f"{shown(out)} is up to date")
        return
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "python"
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        command += [arg for platform in platforms for arg in ("--platform", platform)]
        command += ["--only-binary=:all:", "--implementation", "cp", "--python-version", python_version]
        command += ["--no-compile", "--target", str(target), "-r", str(SDK_REQUIREMENTS)]
        subprocess.run(command, check=True)
        # Console scripts carry this machine's interpreter path and are never run on Lambda.
        shutil.rmtree(target / "bin", ignore_errors=True)
        installed = {_normalise(p.stem.rsplit("-", 1)[0]) for p in target.glob("*.dist-info")}
        unpinned = installed - pinned_names(SDK_REQUIREMENTS)
        if unpinned:
            raise SystemExit(f"{SDK_REQUIREMENTS}: pin these dependencies too: {', '.join(sorted(unpinned))}")
        write_zip(tree_entries(target, prefix="python/"), out)
    write_built_for(out, arch, python_version)
    mark_built(out, digest)


def build_core_layer(out: Path) -> None:
    entries = sorted(tree_entries(CORE_SOURCE, prefix="python/azs3copy/"))
    digest = inputs_digest([name.encode() + b"\0" + path.read_bytes() for name, path in entries])
    if up_to_date(out, digest):
        print(f"{shown(out)} is up to date")
        return
    write_zip(entries, out)
    mark_built(out, digest)


def build_function_zips(out_dir: Path) -> None:
    directories = sorted(p for p in LAMBDAS.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    if not directories:
        raise SystemExit(f"no function directories under {LAMBDAS}")
    for directory in directories:
        out = out_dir / f"{directory.name}.zip"
        entries = sorted(tree_entries(directory))
        digest = inputs_digest([name.encode() + b"\0" + path.read_bytes() for name, path in entries])
        if up_to_date(out, digest):
            continue
        write_zip(entries, out)
        mark_built(out, digest)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    layers = commands.add_parser("layers", help="build the azure-sdk and core layers")
    layers.add_argument("--arch", choices=sorted(PLATFORMS), default="arm64")
    layers.add_argument("--python-version", default="3.12")
    layers.add_argument("--out", type=Path, default=ROOT / "build" / "layers")
    functions = commands.add_parser("functions", help="zip each lambdas/<dir>/")
    functions.add_argument("--out", type=Path, default=ROOT / "build" / "functions")
    args = parser.parse_args(argv)

    if args.command == "layers":
        build_sdk_layer(args.out.resolve() / "azure-sdk.zip", args.arch, args.python_version)
        build_core_layer(args.out.resolve() / "core.zip")
    else:
        build_function_zips(args.out.resolve())


if __name__ == "__main__":
    main()
