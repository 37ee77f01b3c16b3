# faustapp worker and generator image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY src ./src
# The exact dependency set of uv.lock (the one the tests ran with), then faustapp itself.
RUN pip install "uv==0.13.9" \
    && uv export --frozen --no-dev --no-emit-project --no-hashes -o /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && pip install --no-deps . \
    && pip uninstall -y uv && rm -rf /app/build /tmp/requirements.txt

# Unprivileged user; RocksDB table state lives in /data (rebuilt from changelogs if lost).
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin faustapp \
    && mkdir -p /data \
    && chown faustapp:faustapp /data
USER faustapp
WORKDIR /home/faustapp

ENV FAUSTAPP_DATA_DIR=/data \
    FAUSTAPP_WEB_PORT=6066

EXPOSE 6066

# FAUSTAPP_WEB_HOST is both the bind address and the URL other workers use to reach this one
# (queries are forwarded to the worker owning a key). Unless set explicitly, use this
# container's own IP: unique per replica, reachable by the other replicas and by Prometheus.
ENTRYPOINT ["/bin/sh", "-c", "if [ -z \"$FAUSTAPP_WEB_HOST\" ]; then FAUSTAPP_WEB_HOST=\"$(python -c 'import socket; print(socket.gethostbyname(socket.gethostname()))')\"; export FAUSTAPP_WEB_HOST; fi; exec \"$@\"", "--"]
CMD ["faustapp", "worker", "-l", "info"]
