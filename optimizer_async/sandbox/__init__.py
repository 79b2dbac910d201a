"""The embedded AWS sandbox: moto's server, AWS-faithful patches, traffic shaping, seeder.

    with EmbeddedSandbox(SandboxConfig.for_profile("aws")) as sandbox:
        Seeder(sandbox.endpoint_url).seed(["dev", "staging"])
        ...  # point boto3 / aioboto3 at sandbox.endpoint_url

Standalone: `python -m optimizer_async.sandbox serve --port 4566 --seed dev`. The port opens
only once seeding is done, so the first answer already shows the whole seeded account.

Tests put the sandbox on virtual time: `with sandbox.use_clock(ManualClock()) as clock:`
(see `clock.py`); quotas, update windows, IAM propagation and injected waits then move only
when the test calls `clock.advance`.

Seeded functions carry a workload profile (`workload/`): their CloudWatch metrics and Logs
Insights answers come from a model of what their traffic does under their configuration
over time, so a change an optimizer makes has consequences a test can count
(`GET /_sandbox/workload/outcomes`). `serve --profile-mix steady,slow,...` chooses them.
"""
