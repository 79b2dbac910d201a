"""Run the Pulumi program under `pulumi.runtime.set_mocks` and record every registration.

The recorder sits at the monitor, so it sees what the engine would: resource types, names,
inputs (secrets still marked secret), and the protect / retainOnDelete options.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

from pulumi_stack.environment import BaselineEnvironment
from pulumi_stack.program import main

PROJECT = "lambda-optimizer-baseline"
ACCOUNT = "123456789012"
REGION = "us-east-1"
SECRETS = {
    "databaseUrl": "postgresql://orders:pa55word@db.internal:5432/orders",
    "apiKey": "k-0123456789",
}


@dataclass
class Registration:
    type: str
    name: str
    inputs: dict[str, Any]
    protect: bool
    retain_on_delete: bool
    secret_inputs: frozenset[str]


class _Mocks(Mocks):
    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        name = str(args.inputs.get("name") or args.inputs.get("bucket") or args.name)
        if args.typ == "aws:s3/bucketObjectv2:BucketObjectv2":
            state["versionId"] = "v-1"
        if args.typ == "aws:lambda/layerVersion:LayerVersion":
            state["arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{args.inputs['layerName']}:1"
        elif args.typ == "aws:iam/role:Role":
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{name}"
        else:
            state.setdefault("arn", f"arn:aws:mock:{REGION}:{ACCOUNT}:{name}")
        return f"{name}-id", state

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/test",
                "userId": "test",
                "id": ACCOUNT,
            }, []
        if args.token == "aws:index/getRegion:getRegion":
            return {
                "name": REGION,
                "region": REGION,
                "id": REGION,
                "endpoint": "",
                "description": "",
            }, []
        return {}, []


class _Recorder(MockMonitor):
    def __init__(self) -> None:
        super().__init__(_Mocks())
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:
        if request.type != "pulumi:pulumi:Stack":
            raw = rpc.deserialize_properties(request.object, keep_unknowns=True)
            secret = frozenset(k for k, v in raw.items() if rpc.is_rpc_secret(v))
            inputs = {k: rpc.unwrap_rpc_secret(v) if k in secret else v for k, v in raw.items()}
            self.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    inputs=inputs,
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                    secret_inputs=secret,
                )
            )
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]


@dataclass
class ProgramRun:
    registrations: list[Registration]
    environment: BaselineEnvironment
    outputs: dict[str, Any] = field(default_factory=dict)  # the stack's exports, resolved

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def one(self, type_: str) -> Registration:
        (found,) = self.of_type(type_)
        return found


def run_program(suffix: str = "dev", omit: tuple[str, ...] = (), **config: str) -> ProgramRun:
    # Pulumi's mocks run on the thread's current event loop; anyio.run (earlier tests) leaves
    # none behind, so give this program a fresh one.
    asyncio.set_event_loop(asyncio.new_event_loop())
    recorder = _Recorder()
    pulumi.runtime.set_mocks(
        recorder.mocks, project=PROJECT, stack=suffix, preview=False, monitor=recorder
    )
    values = {"environmentSuffix": suffix, **SECRETS, **config}
    values = {key: value for key, value in values.items() if key not in omit}
    pulumi.runtime.set_all_config(
        {f"{PROJECT}:{key}": value for key, value in values.items()},
        secret_keys=[f"{PROJECT}:databaseUrl", f"{PROJECT}:apiKey"],
    )
    found: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[Any]:
        found["environment"] = main()
        root: Any = pulumi.runtime.get_root_resource()
        return pulumi.Output.all(**root.outputs).apply(lambda values: found.update(values))

    program()
    outputs = {k: v for k, v in found.items() if k != "environment"}
    return ProgramRun(recorder.registrations, found["environment"], outputs)
