"""`report merge SHARD.json ...`: the shards' JSON reports joined into the report one run
over every environment would have written: its ids, times and API call counts aside, and
each function's `evidence.report_lines.scan`, which describes the Logs Insights query of
the shard that read it (the query's id, the log groups it read together, its bytes).

Every shard must be there exactly once, of the same run, and no environment in two. Each
shard's report carries a fingerprint of its run (`shards.Fingerprint`: the command, the
selection, steps, targets, guardrails, prices, shard count, and every environment the run
judged before it was split); shards whose fingerprints differ are refused, naming the parts
that differ, and so is a report without one (written before fingerprints: which run it
belongs to cannot be told).
Environments come in the order the run had them (with `--all`, each shard found and judged
the candidates of its own suffixes: their findings are joined). The money is priced again
over all the shards' lines at full precision (`shard.money_lines`), so the account's tiers
and free tier count once, as in one run; API calls are summed. The merged report's exit
code is the run's: 1 if an environment failed.
No AWS call is made.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from optimizer_async.aws import pricing
from optimizer_async.execution.results import RunStatus, run_status
from optimizer_async.fleet import shards
from optimizer_async.jsonio import strict_json
from optimizer_async.money import bill
from optimizer_async.money.costs import Money
from optimizer_async.reporting.org_report import KIND as ORGANISATION
from optimizer_async.reporting.org_report import PlaceTotals, account_totals
from optimizer_async.reporting.report import SCHEMA_VERSION, savings_json, sum_calls
from optimizer_async.steps.base import MoneyLine

# What merging reads of each report (`found` may be absent: a run without --all).
_NEEDED: Final = (
    "run_id", "dry_run", "command", "account", "region", "steps", "started_at",
    "elapsed_s", "stopped_by", "environments", "savings", "api_calls",
)  # fmt: skip
_NEEDED_OF_SHARD: Final = ("index", "count", "of", "free_tier", "money_lines")
_NEEDED_OF_ORGANISATION: Final = ("run_id", "dry_run", "command", "started_at", "elapsed_s",
                                  "stopped_by", "places", "api_calls", "notes")  # fmt: skip


class MergeError(ValueError):
    """Reports that cannot be merged: which, and why."""


def load(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The shard reports, each checked to be one."""
    documents = []
    for path in paths:
        try:
            document = strict_json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise MergeError(f"{path}: {getattr(error, 'strerror', None) or error}") from None
        if not isinstance(document, dict) or document.get("schema_version") != SCHEMA_VERSION:
            raise MergeError(f"{path} is not a lambda-optimizer JSON report")
        if not isinstance(document.get("shard"), dict):
            raise MergeError(f"{path} is not a shard's report (a run with --shard I/N)")
        organisation = document.get("kind") == ORGANISATION
        places = document.get("places", []) if organisation else []
        if not (isinstance(places, list) and all(isinstance(p, dict) for p in places)):
            raise MergeError(f"{path} is not a whole shard report: its places are not a list")
        reports = (
            [p.get("report") for p in places if p.get("report")] if organisation else [document]
        )
        if not all(isinstance(report, dict) for report in reports):
            raise MergeError(f"{path} is not a whole shard report: a place's report is not one")
        missing = [f"shard.{key}" for key in ("index", "count") if key not in document["shard"]]
        missing += [key for key in _NEEDED_OF_ORGANISATION if organisation and key not in document]
        for report in reports:
            missing += [key for key in _NEEDED if key not in report]
            shard = report.get("shard") or {}
            missing += [f"shard.{key}" for key in _NEEDED_OF_SHARD if key not in shard]
        if missing:
            raise MergeError(f"{path} is not a whole shard report: no {', '.join(missing)}")
        if not all(isinstance(report["shard"].get("fingerprint"), dict) for report in reports):
            raise MergeError(
                f"{path} has no fingerprint of its run (written by an earlier "
                "lambda-optimizer): which run it is a shard of cannot be told; run the shards "
                "again with this version"
            )
        documents.append(document)
    return documents


def merge(documents: Sequence[dict[str, Any]], run_id: str) -> dict[str, Any]:
    """One report from the shards' (see the module's docstring)."""
    if not documents:
        raise MergeError("no reports to merge")
    try:
        organisations = sum(d.get("kind") == ORGANISATION for d in documents)
        if organisations and organisations != len(documents):
            raise MergeError("the reports mix --accounts runs with others: not shards of one run")
        if organisations:
            return _merged_organisation(documents, run_id)
        return _merged(documents, run_id)[0]
    except MergeError:
        raise
    except (KeyError, TypeError, ValueError) as error:  # a report edited by hand, or cut
        raise MergeError(f"the reports cannot be read as shards of one run: {error!r}") from None


def _merged_organisation(documents: Sequence[dict[str, Any]], run_id: str) -> dict[str, Any]:
    """Organisation shards (`--accounts` with `--shard`): each account and region's shard
    reports merged as one run's, the accounts' totals made again from them."""
    count = _same(documents, lambda d: d["shard"]["count"], "shard count")
    _every_shard_once(sorted(d["shard"]["index"] for d in documents), count)
    for what, value in (
        ("dry run", lambda d: d["dry_run"]),
        ("command", lambda d: d["command"]),
        ("accounts and regions", lambda d: [(p["account"], p["region"]) for p in d["places"]]),
    ):
        _same(documents, value, what)
    documents = sorted(documents, key=lambda d: d["shard"]["index"])
    places, totals = [], []
    for i, first in enumerate(documents[0]["places"]):
        given = [(d["shard"], d["places"][i]) for d in documents]
        failed = [f"shard {s['index']}/{count}: {p['error']}" for s, p in given if not p["report"]]
        reports = [place["report"] for _, place in given if place["report"]]
        # The shards that ran this place: what they did stands, whatever the others met.
        merged, money = _merged(reports, None, partial=bool(failed)) if reports else (None, Money())
        environments = [] if merged is None else merged["environments"]
        statuses = {e["status"] for e in environments} | ({"failed"} if failed else set())
        places.append(
            {
                **{key: first[key] for key in ("account", "account_name", "region")},
                # As the place's own run says it (a place a shard could not run: failed).
                "status": merged["status"] if merged is not None and not failed else "failed",
                "error": "; ".join(failed) or None,
                "run_id": None,  # each shard's own: the report's merged_from
                "report": merged,
            }
        )
        totals.append(
            PlaceTotals(
                first["account"],
                first["account_name"],
                first["region"],
                frozenset(statuses),
                len(environments),
                sum(e["status"] == "failed" for e in environments) + bool(failed),
                money,
            )
        )
    savings = Money.total(place.money for place in totals)
    stopped = [d["stopped_by"] for d in documents if d["stopped_by"]]
    statuses = {status for place in totals for status in place.statuses}
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": ORGANISATION,
        "run_id": run_id,
        "dry_run": documents[0]["dry_run"],
        "status": run_status(statuses, bool(stopped)),
        "command": documents[0]["command"],
        "rollback_of": None,
        "started_at": min(d["started_at"] for d in documents),
        "elapsed_s": max(d["elapsed_s"] for d in documents),
        "stopped_by": stopped[0] if stopped else None,
        "shard": None,
        "accounts": account_totals(totals, bool(stopped)),
        "savings": {
            "monthly_usd": round(savings.net_usd, 2),
            "monthly_usd_low": round(savings.net_low_usd, 2),
            "estimated": documents[0]["dry_run"],
        },
        "api_calls": sum_calls([d["api_calls"] for d in documents]),
        "notes": documents[0]["notes"],
        "places": places,
        "merged_from": [d["run_id"] for d in documents],
    }


def _merged(
    documents: Sequence[dict[str, Any]], run_id: str | None, partial: bool = False
) -> tuple[dict[str, Any], Money]:
    """The shards' reports of one account and region as one, and its exact money;
    `partial`: some shards could not run it (an organisation's place), merge the others."""
    _one_run(documents)
    parts = [document["shard"] for document in documents]
    count = _same(documents, lambda d: d["shard"]["count"], "shard count")
    if not partial:
        _every_shard_once(sorted(shard["index"] for shard in parts), count)
    for what, value in (
        ("dry run", lambda d: d["dry_run"]),
        ("command", lambda d: d["command"]),
        ("account", lambda d: d["account"]),
        ("region", lambda d: d["region"]),
        ("steps", lambda d: d["steps"]),
        ("prices", lambda d: d["savings"]["prices"]),
        ("free tier", lambda d: d["shard"]["free_tier"]),
        ("finding (--all)", lambda d: d.get("found") is None),
    ):
        _same(documents, value, what)
    first = documents[0]
    environments = [env for document in documents for env in document["environments"]]
    suffixes = [env["suffix"] for env in environments]
    twice = sorted(suffix for suffix, n in Counter(suffixes).items() if n > 1)
    if twice:
        raise MergeError(f"environment(s) {', '.join(twice)} in more than one shard's report")
    order = {suffix: i for i, suffix in enumerate(_order(documents))}
    environments.sort(key=lambda env: order[env["suffix"]])
    lines_by_suffix = {
        entry["suffix"]: [MoneyLine(**line) for line in entry["lines"]]
        for shard in parts
        for entry in shard["money_lines"]
    }
    lines = [line for env in environments for line in lines_by_suffix.get(env["suffix"], [])]
    region, prices = first["region"], first["savings"]["prices"]
    account_money = bill.account_lines(lines, _book(region, prices), first["shard"]["free_tier"])
    stopped = [d["stopped_by"] for d in documents if d["stopped_by"]]
    money = Money.total([Money(tuple(lines)), account_money])
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "dry_run": first["dry_run"],
        "status": _status(first, environments, bool(stopped)),
        "account": first["account"],
        "region": region,
        "started_at": min(d["started_at"] for d in documents),
        "elapsed_s": max(d["elapsed_s"] for d in documents),  # the shards ran side by side
        "command": first["command"],
        "rollback_of": None,
        "stopped_by": stopped[0] if stopped else None,
        "applied_plan": None,
        "plan_out": None,
        "bake": _bake([d["bake"] for d in documents if d.get("bake")]),
        "steps": first["steps"],
        "found": _found([d["found"] for d in documents if d.get("found") is not None]),
        "environments": environments,
        "savings": savings_json(
            money,
            account_money,
            first["dry_run"],
            region,
            prices,
        ),
        "api_calls": sum_calls([d["api_calls"] for d in documents]),
        "shard": None,
        "merged_from": [d["run_id"] for d in sorted(documents, key=lambda d: d["shard"]["index"])],
    }, money


def _one_run(documents: Sequence[dict[str, Any]]) -> None:
    """MergeError naming the fingerprint parts in which a shard differs from the first."""
    first = documents[0]
    for document in documents[1:]:
        differ = shards.differing(first["shard"]["fingerprint"], document["shard"]["fingerprint"])
        if differ:
            raise MergeError(
                f"the reports are not shards of one run: {_name(document)} differs from "
                f"{_name(first)} in {', '.join(differ)}"
            )


def _name(document: dict[str, Any]) -> str:
    shard = document["shard"]
    return f"shard {shard['index']}/{shard['count']} (run {document['run_id']})"


def _status(
    first: dict[str, Any], environments: Sequence[dict[str, Any]], stopped: bool
) -> RunStatus:
    """The merged run's status, as one run's report would say it (`results.run_status`)."""
    applied = any(
        change["status"] == "applied" and change.get("verified")
        for env in environments
        for change in [
            *env["changes"],
            *(change for function in env["functions"] for change in function["changes"]),
        ]
    )
    return run_status(
        {env["status"] for env in environments},
        stopped,
        dry_run=bool(first["dry_run"]),
        applied=applied,
        rollback=first.get("rollback_of") is not None,
    )


def _order(documents: Sequence[dict[str, Any]]) -> list[str]:
    """The run's order of environments: the suffixes given (the same in every shard), or,
    where each shard found its own (`--all`), by suffix, as one run's finder orders them."""
    given = [d["shard"]["of"] for d in documents]
    if all(of == given[0] for of in given):
        return list(given[0])
    return sorted({suffix for of in given for suffix in of})


def _found(findings: list[dict[str, Any]]) -> dict[str, Any] | None:
    """`--all`'s findings joined: each shard judged the candidates of its own suffixes."""
    if not findings:
        return None
    candidates = [c for found in findings for c in found["candidates"]]
    return {
        "functions_listed": max(found["functions_listed"] for found in findings),
        "environments": sorted({s for found in findings for s in found["environments"]}),
        "candidates": sorted(candidates, key=lambda c: (c["suffix"], c["function"])),
    }


def _bake(bakes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The shards' bakes as one: every function rolled back, the first error if any."""
    if not bakes:
        return None
    return {
        "duration_s": max(bake["duration_s"] for bake in bakes),
        "polls": max(int(bake.get("polls", 0)) for bake in bakes),
        "error": next((bake["error"] for bake in bakes if bake.get("error")), None),
        "rolled_back": {
            name: why for bake in bakes for name, why in bake.get("rolled_back", {}).items()
        },
    }


def _same(
    documents: Sequence[dict[str, Any]], value: Callable[[dict[str, Any]], Any], what: str
) -> Any:
    """The value every report has; MergeError naming the first that differs."""
    first = value(documents[0])
    for document in documents[1:]:
        if value(document) != first:
            raise MergeError(
                f"the reports differ in {what}: {documents[0]['run_id']} and "
                f"{document['run_id']} are not shards of one run"
            )
    return first


def _every_shard_once(indexes: list[int], count: int) -> None:
    twice = sorted(i for i, n in Counter(indexes).items() if n > 1)
    if twice:
        raise MergeError(f"shard(s) {', '.join(f'{i}/{count}' for i in twice)} given twice")
    missing = [i for i in range(count) if i not in indexes]
    if missing:
        raise MergeError(f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing")


def _book(region: str, prices: str) -> pricing.PriceBook:
    """The price table the shards priced from; live prices are not read again offline."""
    book = pricing.table(region)
    if prices and prices != book.origin:
        raise MergeError(
            f"the shards were priced from {prices!r}: report merge prices again from the "
            f"table ({book.origin}); run the shards with --prices table to merge them"
        )
    return book
