# syntax=docker/dockerfile:1
# mtls-readiness: the nightly job's image. Build from the repository root:
#   docker build -t mtls-readiness:0.1.0 .
# Builder: make the wheel and a self-contained virtualenv. Runtime: the same slim Python with
# that virtualenv copied in; no compiler, no pip, a fixed non-root UID, and nothing written
# outside mounted volumes (the CronJob runs it with readOnlyRootFilesystem).
# Pinned by digest (a tag moves): the same bytes at every build. To upgrade, take the new digest of
# the tag (`docker buildx imagetools inspect python:3.11-slim-bookworm`) and rebuild.
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm@sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY analyzer/ analyzer/
# --only-binary: every dependency comes as a wheel, so no compiler is needed even here.
# constraints.txt pins every runtime dependency (how to regenerate it: its first lines).
# pip is removed from the runtime virtualenv; the bytecode is compiled now because the
# root filesystem is read-only at run time.
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/mtls-readiness \
 && /opt/mtls-readiness/bin/python -m pip install --only-binary=:all: -c constraints.txt /wheels/mtls_readiness-*.whl \
 && /opt/mtls-readiness/bin/python -m pip uninstall --yes pip \
 && /opt/mtls-readiness/bin/python -m compileall -q /opt/mtls-readiness \
 && /opt/mtls-readiness/bin/mtls-readiness --version

FROM ${PYTHON_IMAGE}
# docker build --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" \
#   --build-arg SOURCE=https://github.com/OWNER/mtls-readiness -t mtls-readiness:0.1.0 .
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="mtls-readiness" \
      org.opencontainers.image.description="Which Istio workloads can move from PERMISSIVE to STRICT mTLS" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
# The base image's own pip goes too: nothing in the final image can install packages.
RUN rm -rf /usr/local/bin/pip /usr/local/bin/pip3* /usr/local/lib/python3.*/site-packages/pip \
           /usr/local/lib/python3.*/site-packages/pip-*.dist-info
COPY --from=builder /opt/mtls-readiness /opt/mtls-readiness
# HOME and MPLCONFIGDIR (matplotlib's cache: the notebook API's figures; the report draws without
# it) live on /tmp (an emptyDir in the CronJob); reports go to /reports
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
