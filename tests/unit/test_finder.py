"""The finder's rules, without AWS: candidates by name, the tag's verdict, the globs."""

from __future__ import annotations

from optimizer_async import cli
from optimizer_async.fleet.finder import Filters, candidates, judge
from tests.unit.builders import baseline_function


def test_candidates_are_names_of_a_base_and_a_valid_suffix() -> None:
    names = ["lambda-function-dev", "lambda-function-Dev_1", "worker-a-dev", "other", "worker-"]
    assert candidates(names, ("lambda-function", "worker", "worker-a")) == [
        ("lambda-function-dev", "dev"),
        ("worker-a-dev", "a-dev"),  # base `worker`, or
        ("worker-a-dev", "dev"),  # base `worker-a`: the tag decides which, if either
    ]


def test_only_the_tag_naming_the_suffix_takes_a_candidate() -> None:
    tagged = baseline_function("dev").state
    assert judge("dev", tagged) == (True, "environment-suffix tag is 'dev'")
    assert judge("dev-old", tagged) == (False, "environment-suffix tag is 'dev', not 'dev-old'")
    taken, reason = judge("dev", baseline_function("dev", tags={}).state)
    assert not taken
    assert reason.startswith("no environment-suffix tag")
    assert judge("dev", None) == (False, "deleted since it was listed")


def test_match_any_glob_then_exclude() -> None:
    filters = Filters(match=("pr-*", "dev"), exclude=("pr-9*",))
    assert filters.refusal("pr-12") is None
    assert filters.refusal("dev") is None
    assert filters.refusal("prod") == "not matched by --match pr-* dev"
    assert filters.refusal("pr-90") == "excluded by --exclude pr-9*"
    assert Filters().refusal("anything") is None


def test_all_ignores_environment_suffix_and_keeps_the_globs() -> None:
    config = cli.parse_config(
        ["--all", "--match", "pr-*,qa", "--exclude", "pr-1", "--match", "qa"],
        {"ENVIRONMENT_SUFFIX": "dev"},
    )
    assert config.find_all
    assert config.suffixes == ()
    assert (config.match, config.exclude) == (("pr-*", "qa"), ("pr-1",))
