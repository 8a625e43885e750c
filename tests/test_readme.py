"""The README keeps exactly two set-up commands, and .ci/run runs the README's test command."""

from __future__ import annotations

import re

from conftest import ROOT


def _blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_readme_has_the_two_setup_commands():
    text = (ROOT / "README.md").read_text()
    setup = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    blocks = _blocks(setup)
    assert len(blocks) == 2
    assert "equivrepair demo" in blocks[0]
    assert "pytest" in blocks[1]
    for block in blocks:
        assert block.strip().startswith("pip install torch==2.13.0 &&")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "test-command" in ci
    text = (ROOT / "README.md").read_text()
    marked = text.split("<!-- test-command -->", 1)[1].split("<!-- /test-command -->", 1)[0]
    assert "python -m pytest" in _blocks(marked)[0]
