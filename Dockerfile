# licsync as a scheduled job: `docker run --env-file licsync.env -v $PWD:/work licsync sync --config /work/licsync.toml`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[postgres]" && useradd --create-home --uid 10001 licsync
USER licsync
WORKDIR /work
ENTRYPOINT ["licsync"]
CMD ["--help"]
