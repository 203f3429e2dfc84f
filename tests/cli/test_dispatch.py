"""The dispatcher builds a parser with only the named command, or the full one when it cannot tell."""

from __future__ import annotations

from satwatch.cli import build_parser


def _commands(parser) -> set[str]:  # type: ignore[no-untyped-def]
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)


def test_named_command_alone() -> None:
    assert _commands(build_parser(only="similarity")) == {"similarity"}
    args = build_parser(only="similarity").parse_args(["similarity", "a", "b", "--workers", "1"])
    assert args.command == "similarity" and args.workers == 1


def test_full_parser_when_unknown_or_absent() -> None:
    full = _commands(build_parser())
    assert {"similarity", "triplets"} <= full
    assert _commands(build_parser(only="nosuch")) == full
    assert _commands(build_parser(only=None)) == full
