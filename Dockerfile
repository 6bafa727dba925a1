# licsync as a scheduled job (docs/operations.md):
#   docker build -t licsync .
#   docker run --rm -v ./config:/etc/licsync:ro -v licsync-state:/var/lib/licsync \
#     -e LICSYNC_GRAPH_CLIENT_SECRET licsync sync --config /etc/licsync/licsync.toml
# The state lives in the volume /var/lib/licsync (LICSYNC_STATE_URL; set it to a postgresql://
# url from a secret for a shared store). The configuration is mounted read-only. No secret is
# ever copied into the image: credentials come from the environment or mounted files at run time.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The same two commands tests/ops/test_container.py runs into a fresh virtual environment.
RUN python -m venv /opt/licsync \
    && /opt/licsync/bin/pip install --no-cache-dir ".[postgres,notify]"

FROM ${PYTHON_IMAGE}
# docker build --build-arg VERSION=$(git describe) --build-arg REVISION=$(git rev-parse HEAD) \
#   --build-arg SOURCE=<repository url> .
ARG VERSION=0.1.0
ARG REVISION=""
ARG SOURCE=""
LABEL org.opencontainers.image.title="licsync" \
      org.opencontainers.image.description="Entra ID group-based licensing for any Microsoft 365 tenant, through Microsoft Graph" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="MIT"
ENV PATH=/opt/licsync/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LICSYNC_STATE_URL=/var/lib/licsync/state.db
RUN groupadd --system --gid 10001 licsync \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/licsync --no-create-home \
       --shell /usr/sbin/nologin licsync \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/licsync \
    && install -d -m 0755 /etc/licsync
COPY --from=build /opt/licsync /opt/licsync
USER 10001:10001
WORKDIR /var/lib/licsync
VOLUME ["/var/lib/licsync"]
ENTRYPOINT ["licsync"]
CMD ["--help"]
