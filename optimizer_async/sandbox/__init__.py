"""The embedded AWS sandbox: moto's server, AWS-faithful patches, traffic shaping, seeder.

    with EmbeddedSandbox(SandboxConfig.for_profile("aws")) as sandbox:
        Seeder(sandbox.endpoint_url).seed(["dev", "staging"])
        ...  # point boto3 / aioboto3 at sandbox.endpoint_url

Standalone: `python -m optimizer_async.sandbox serve --port 4566 --seed dev`.
"""
