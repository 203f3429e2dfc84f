"""Lay the sources out as the installed ``satwatch`` package, for mypy (``make typecheck``).

pyproject maps folders into one namespace (``services/`` is ``satwatch.services``, ...). The editable install
reaches them through an import hook that mypy cannot follow, so checked folder by folder every
``satwatch.*`` import would be unresolved and silently ``Any``. This script builds ``build/typecheck/`` from
pyproject's own ``package-dir``: a folder per package holding links to its source files, so
``MYPYPATH=build/typecheck mypy -p satwatch`` checks every module under its installed name, with the
imports between packages resolved. A source folder that pyproject does not list is refused: it would not be
installed either.
"""

from __future__ import annotations

import os
import shutil
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = ("satwatch", "services", "producers", "consumers", "onnx_models")


def main(out: Path) -> int:
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs: dict[str, str] = setup["package-dir"]
    packages: list[str] = setup["packages"]
    mapped = {(ROOT / dirs.get(p, p.replace(".", "/"))).resolve() for p in packages}
    unlisted = sorted(
        str(init.parent.relative_to(ROOT))
        for top in SOURCE_ROOTS
        for init in (ROOT / top).rglob("__init__.py")
        if init.parent.resolve() not in mapped and "__pycache__" not in init.parts
    )
    if unlisted:
        print(f"pyproject.toml does not package {unlisted}: add them to packages and package-dir", file=sys.stderr)
        return 1
    shutil.rmtree(out, ignore_errors=True)
    for pkg in packages:
        src = ROOT / dirs.get(pkg, pkg.replace(".", "/"))
        dst = out / pkg.replace(".", "/")
        dst.mkdir(parents=True, exist_ok=True)
        for f in sorted(src.iterdir()):
            if f.suffix in (".py", ".pyi") or f.name == "py.typed":
                (dst / f.name).symlink_to(os.path.relpath(f, dst))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "typecheck"))
