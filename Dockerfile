# posterlab: one image for every service (workers, producer, face API, migrations).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 1000 posterlab
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && mkdir -p /data/blobs && chown -R posterlab /data
USER posterlab
ENV POSTERLAB_BLOB_DIR=/data/blobs
ENTRYPOINT ["posterlab"]
CMD ["--help"]
