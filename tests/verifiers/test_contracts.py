"""Our own verifiers and scorers, through the testing kit's pytest plugin (the marker and
the fixture a user's suite gets from ``pip install rewardkit[testing]``)."""

from __future__ import annotations

import pytest

from rewardkit.scorers import Format, Length, Proximity, XMLCount
from rewardkit.verifiers import MathEquivalence


@pytest.mark.rewardkit_contract("math_equivalence", columns={"answer": "42"}, max_seconds=10)
def test_math_equivalence_by_name():
    pass


@pytest.mark.rewardkit_contract("rewardkit.verifiers:MathEquivalence", columns={"answer": "-3/4"}, max_seconds=10)
def test_math_equivalence_by_import_path():
    pass


@pytest.mark.parametrize("component, columns", [
    (MathEquivalence(answer_column="gold"), {"gold": "12"}),
    (Format(style="lenient"), {}),
    (Format(style="strict"), {}),
    (XMLCount(), {}),
    (Proximity(), {"answer": "10"}),
    (Length(max_completion_len=200, soft_punish_cache=50), {}),
], ids=lambda x: type(x).__name__ if not isinstance(x, dict) else "")
def test_components_keep_the_contract(rewardkit_contract, component, columns):
    rewardkit_contract(component, columns=columns, max_seconds=10)
