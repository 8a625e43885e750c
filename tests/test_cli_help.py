"""Every command has `--help` with an example, and the example's options exist.

The convention (see any `equivrepair COMMAND --help`): a line `example:` or `examples:` followed by
indented `equivrepair COMMAND ...` lines (a trailing backslash continues a line).
"""

from __future__ import annotations

import argparse
import re

import pytest

from equivrepair.cli import build_parser, main


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


COMMANDS = sorted(_subparsers())


def _help(cmd: str, capsys) -> str:
    assert main([cmd, "--help"]) == 0
    return capsys.readouterr().out


def _example_commands(text: str) -> list[str]:
    """The `equivrepair ...` invocations listed under the example heading(s), continuations joined."""
    out: list[str] = []
    in_examples = False
    for line in text.splitlines():
        if re.match(r"^examples?:\s*$", line):
            in_examples = True
            continue
        if in_examples and line and not line.startswith(" "):
            in_examples = False  # the next heading
        s = line.strip()
        if not in_examples or not s or s.startswith("#"):
            continue
        if out and out[-1].endswith("\\"):
            out[-1] = out[-1][:-1] + " " + s
        elif s.startswith("equivrepair "):
            out.append(s)
    return [c.split("  #", 1)[0].strip() for c in out]


def test_the_list_of_commands_is_complete(capsys):
    assert main(["--help"]) == 0
    listed = re.findall(r"^    ([a-z][a-z-]*)", capsys.readouterr().out, flags=re.M)
    assert sorted(listed) == COMMANDS
    assert {"verify", "merge", "repair", "campaign", "report", "demo"} <= set(COMMANDS)


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_has_a_working_example(cmd, capsys):
    text = _help(cmd, capsys)
    assert re.search(r"^examples?:\s*$", text, flags=re.M), f"`equivrepair {cmd} --help` has no example heading"
    examples = _example_commands(text)
    own = [e for e in examples if e.split()[1] == cmd]
    assert own, f"`equivrepair {cmd} --help` shows no `equivrepair {cmd} ...` example"
    parsers = _subparsers()
    for ex in examples:
        name = ex.split()[1]
        assert name in parsers, f"example names an unknown command: {ex}"
        known = {o for a in parsers[name]._actions for o in a.option_strings}
        used = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", ex))
        unknown = sorted(u for u in used if u not in known)
        assert not unknown, f"example `{ex}` uses options that `{name}` does not have: {unknown}"
