# syntax=docker/dockerfile:1
# mtls-readiness: the nightly job's image. Build from the repository root:
#   docker build -t mtls-readiness:0.1.0 .
# Builder: make the wheel and a self-contained virtualenv. Runtime: the same slim Python with
# that virtualenv copied in; no compiler, no pip, a fixed non-root UID, and nothing written
# outside mounted volumes (the CronJob runs it with readOnlyRootFilesystem).
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY analyzer/ analyzer/
# --only-binary: every dependency comes as a wheel, so no compiler is needed even here.
# pip is removed from the runtime virtualenv; the bytecode is compiled now because the
# root filesystem is read-only at run time.
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/mtls-readiness \
 && /opt/mtls-readiness/bin/python -m pip install --only-binary=:all: /wheels/mtls_readiness-*.whl \
 && /opt/mtls-readiness/bin/python -m pip uninstall --yes pip \
 && /opt/mtls-readiness/bin/python -m compileall -q /opt/mtls-readiness \
 && /opt/mtls-readiness/bin/mtls-readiness --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="mtls-readiness" \
      org.opencontainers.image.description="Which Istio workloads can move from PERMISSIVE to STRICT mTLS" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /opt/mtls-readiness /opt/mtls-readiness
# HOME and MPLCONFIGDIR live on /tmp (an emptyDir in the CronJob); reports go to /reports
# (the PersistentVolumeClaim). Both are the only writable paths.
ENV PATH=/opt/mtls-readiness/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    MTLS_READINESS_OUTPUT_DIR=/reports
WORKDIR /tmp
USER 65532:65532
ENTRYPOINT ["mtls-readiness"]
CMD ["report"]
