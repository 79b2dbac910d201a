# lambda-optimizer as a container: the same command line the tests run, as a non-root user.
#   docker build -t lambda-optimizer .
#   docker run --rm -e AWS_REGION -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY \
#       lambda-optimizer --all --dry-run --output json
# Sharded on a job runner: deploy/kubernetes/indexed-job.yaml, deploy/ci/github-actions.yml.
# As a service (the default command; give it LAMBDA_OPTIMIZER_API_TOKEN):
# deploy/kubernetes/deployment.yaml.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY optimizer_async ./optimizer_async
COPY lambda ./lambda
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin optimizer
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
WORKDIR /home/optimizer
# Run records (before-images, reports) go to --state-dir: mount a volume there, or keep them
# in S3 with --state-bucket, since a container's disk does not outlive it.
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["lambda-optimizer"]
CMD ["serve", "--host", "0.0.0.0", "--all"]
EXPOSE 8080
