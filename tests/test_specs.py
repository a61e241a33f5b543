"""rewardkit.resolve_rubric: one resolver for the CLI and the trainer."""

from __future__ import annotations

import pytest

import rewardkit
from rewardkit import InvalidArgument, Rubric
from rewardkit.scorers import Contains


def shout(text):
    return text.isupper()


def test_registered_name_gives_a_rubric():
    assert isinstance(rewardkit.resolve_rubric("math"), Rubric)


def test_module_attr_and_objects_become_one_part_rubrics():
    r = rewardkit.resolve_rubric("tests.test_specs:shout")
    assert r.part_names == ("shout",) and r.score("HI").total == 1.0
    assert rewardkit.resolve_rubric(shout).part_names == ("shout",)
    rubric = Rubric({"a": shout})
    assert rewardkit.resolve_rubric(rubric) is rubric


def test_a_list_is_weighted_parts():
    r = rewardkit.resolve_rubric([shout, Contains("x", name="has_x")], weights=[1.0, 0.5])
    assert r.weights == {"shout": 1.0, "has_x": 0.5}


def test_duplicate_part_names_raise_instead_of_renaming():
    with pytest.raises(InvalidArgument, match="duplicate part name"):
        rewardkit.resolve_rubric([shout, shout])


@pytest.mark.parametrize("spec,kwargs,message", [
    (":x", {}, "expected NAME or module:attribute"),
    ("no_such_module_xyz:r", {}, "cannot import module 'no_such_module_xyz'"),
    ("tests.test_specs:nope", {}, "has no attribute 'nope'"),
    ([shout], {"weights": [1.0, 2.0]}, "must have one weight per"),
    ([], {}, "at least one"),
    (42, {}, "is a int, not a rubric"),
])
def test_bad_specs_raise_invalid_argument(spec, kwargs, message):
    with pytest.raises(InvalidArgument, match=message):
        rewardkit.resolve_rubric(spec, **kwargs)


def test_trainer_errors_name_the_reward_field():
    with pytest.raises(InvalidArgument, match="reward=':x'"):
        rewardkit.resolve_rubric(":x", field="reward")


def test_unknown_name_suggests_close_ones():
    with pytest.raises(InvalidArgument, match="rubric='mth' is not a registered .*did you mean"):
        rewardkit.resolve_rubric("mth")
