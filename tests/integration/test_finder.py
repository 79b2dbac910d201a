"""`--all`: the environments a region holds are found by name and tag, decoys are not taken,
and each candidate's function is read once for finding and discovery together."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

from optimizer_async.definitions import baseline
from tests.conftest import ClientFactory
from tests.integration.conftest import Optimize, Unique

Seed = Callable[..., list[str]]


def _retag(client: ClientFactory, function: str, suffix: str | None) -> None:
    """Tag the function for `suffix`, or (None) take its environment-suffix tag away."""
    lam = client("lambda")
    arn = lam.get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    if suffix is None:
        lam.untag_resource(Resource=arn, TagKeys=["environment-suffix"])
    else:
        lam.tag_resource(Resource=arn, Tags={"environment-suffix": suffix})


def test_all_finds_the_tagged_environments_and_leaves_the_decoys(
    seed: Seed, optimize: Optimize, client: ClientFactory, unique: Unique
) -> None:
    dev, pr1, pr2, old, bare = seed(
        unique("dev"), unique("pr-1"), unique("pr-2"), unique("dev-old"), unique("bare")
    )
    _retag(client, f"lambda-function-{old}", dev)  # a leftover of dev, named by hand
    _retag(client, f"lambda-function-{bare}", None)  # a function no stack tagged
    ours = f"{dev.split('-')[0]}-*"  # this test's environments only (LocalStack keeps others)

    code, report = optimize("--all", "--match", ours, "--dry-run")

    assert code == 0
    assert report["found"]["environments"] == sorted([dev, pr1, pr2])
    assert [e["suffix"] for e in report["environments"]] == sorted([dev, pr1, pr2])
    assert {e["status"] for e in report["environments"]} == {"planned"}
    why = {c["function"]: (c["taken"], c["reason"]) for c in report["found"]["candidates"]}
    assert why[f"lambda-function-{old}"] == (
        False,
        f"environment-suffix tag is {dev!r}, not {old!r}",
    )
    taken, reason = why[f"lambda-function-{bare}"]
    assert not taken
    assert reason.startswith("no environment-suffix tag")
    assert why[f"lambda-function-{pr1}"] == (True, f"environment-suffix tag is {pr1!r}")
    # Five candidates read by the finder; discovery reads none of the three again.
    assert report["api_calls"]["by_operation"]["lambda"]["GetFunction"] == 5


def test_exclude_and_match_leave_environments_out_unread(
    seed: Seed, optimize: Optimize, unique: Unique
) -> None:
    dev, pr1, pr2 = seed(unique("dev"), unique("pr-1"), unique("pr-2"))
    token = dev.split("-")[0]

    code, report = optimize(
        "--all", "--match", f"{token}-pr-*", "--exclude", f"{token}-pr-2", "--dry-run"
    )

    assert code == 0
    assert [e["suffix"] for e in report["environments"]] == [pr1]
    why = {c["suffix"]: c["reason"] for c in report["found"]["candidates"] if not c["taken"]}
    assert why[pr2] == f"excluded by --exclude {token}-pr-2"
    assert why[dev] == f"not matched by --match {token}-pr-*"
    assert report["api_calls"]["by_operation"]["lambda"]["GetFunction"] == 1


def test_all_in_an_empty_selection_has_nothing_to_do(optimize: Optimize, unique: Unique) -> None:
    code, report = optimize("--all", "--match", unique("none-*"), "--dry-run")
    assert code == 0
    assert report["status"] == "nothing_to_do"
    assert report["found"]["environments"] == []
    assert report["environments"] == []


def test_all_reads_every_page_of_the_regions_functions(
    seed: Seed, optimize: Optimize, client: ClientFactory, unique: Unique
) -> None:
    """ListFunctions answers 50 a page: the environment listed last is found too."""
    (first,) = seed(unique("first"))
    lam = client("lambda")
    role = lam.get_function(FunctionName=f"lambda-function-{first}")["Configuration"]["Role"]
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    for n in range(55):  # functions of no environment, listed between the two
        lam.create_function(
            FunctionName=unique(f"other-{n}"),
            Runtime="python3.12",
            Role=role,
            Handler="index.handler",
            Code={"ZipFile": zipped.getvalue()},
        )
    (last,) = seed(unique("last"))

    code, report = optimize("--all", "--match", f"{first.split('-')[0]}-*", "--dry-run")

    assert code == 0
    assert report["found"]["environments"] == sorted([first, last])
    listed = report["found"]["functions_listed"]
    assert listed >= 57
    assert report["api_calls"]["by_operation"]["lambda"]["ListFunctions"] == -(-listed // 50)


def test_a_found_environments_untagged_function_of_another_base_is_not_taken(
    seed: Seed, optimize: Optimize, client: ClientFactory, unique: Unique
) -> None:
    """`--all` takes only what it judged: the environment is found by its first base's
    function, and its second base's function, whose tag was taken away, stays untouched."""
    (dev,) = seed(unique("dev"), functions_per_env=2)
    first, second = baseline.function_bases(2)
    _retag(client, f"{second}-{dev}", None)
    bases = ["--function-base", first, "--function-base", second]

    code, report = optimize("--all", *bases, "--match", dev, "--dry-run")

    assert code == 0
    assert report["found"]["environments"] == [dev]
    (environment,) = report["environments"]
    assert [fn["name"] for fn in environment["functions"]] == [f"{first}-{dev}"]
    why = {  # (a long-lived endpoint's region holds other tests' functions too)
        c["function"]: c["taken"]
        for c in report["found"]["candidates"]
        if c["function"].endswith(dev)
    }
    assert why == {f"{first}-{dev}": True, f"{second}-{dev}": False}
