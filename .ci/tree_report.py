"""The source tree at two commits, side by side: folders and their modules, the largest modules and the
largest functions (for issue notes on the layout; ``python .ci/tree_report.py cead9f9 HEAD``)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict

ROOTS = ("services", "producers", "consumers", "satwatch")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def sources(rev: str) -> dict[str, str]:
    """Path -> text of every Python source under the package folders at ``rev``."""
    paths = [p for p in _git("ls-tree", "-r", "--name-only", rev, *ROOTS).splitlines() if p.endswith(".py")]
    return {p: _git("show", f"{rev}:{p}") for p in paths}


def functions(path: str, text: str) -> list[tuple[int, str]]:
    """(lines, qualified name) of every function and method in a module."""
    out: list[tuple[int, str]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                out.append(((child.end_lineno or child.lineno) - child.lineno + 1, f"{path}:{name}"))
                walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")

    walk(ast.parse(text), "")
    return out


def report(rev: str, top: int) -> str:
    files = sources(rev)
    label = _git("log", "-1", "--format=%h %cs", rev).strip()
    lines = {p: t.count("\n") for p, t in files.items()}
    folders: dict[str, list[str]] = defaultdict(list)
    for p in files:
        folders[p.rsplit("/", 1)[0]].append(p.rsplit("/", 1)[1])
    out = [f"### {rev} ({label}): {len(files)} modules, {sum(lines.values())} lines", "", "```"]
    for folder in sorted(folders):
        mods = sorted(folders[folder])
        size = sum(lines[f"{folder}/{m}"] for m in mods)
        out.append(f"{folder}/  ({len(mods)} modules, {size} lines)")
    out += ["```", "", "Largest modules (lines): " + ", ".join(
        f"`{p}` {n}" for p, n in sorted(lines.items(), key=lambda kv: -kv[1])[:top]
    )]
    funcs = sorted((f for p, t in files.items() for f in functions(p, t)), reverse=True)[:top]
    out += ["", "Largest functions (lines): " + ", ".join(f"`{name}` {n}" for n, name in funcs), ""]
    return "\n".join(out)


if __name__ == "__main__":
    revs = sys.argv[1:] or ["HEAD"]
    print("\n".join(report(rev, 10) for rev in revs))
