"""What a newcomer meets first: the README's spellings, help that tells the truth, one line per mistake."""

from __future__ import annotations

import pytest

from .cli_helpers import run


@pytest.mark.parametrize("command", ["query", "worker"])
def test_a_required_study_is_not_said_to_have_a_default(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and "--study NAME" in out and "(required)" in out and "default: <network>" not in out


def test_the_readmes_spelling_of_a_network_works_and_a_near_miss_gets_a_suggestion(capsys):
    code, out, _ = run(capsys, "networks", "ResNet-50")
    assert code == 0 and out.startswith("resnet50: 30 layer entries")
    code, _, err = run(capsys, "eval", "ResNet-51", "--dataflow", "kcp_ws")
    assert code == 2 and err.count("\n") == 1 and err.rstrip().endswith("did you mean resnet50?")
    code, _, err = run(capsys, "networks", "resnet50-v1.5")
    assert code == 0
