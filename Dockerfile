# Imagineer: one image for the web server, the generation worker and the training worker
# (docker-compose.yml runs it three ways; docs/deploy.md explains).
#
# torch comes from PyTorch's own index, pinned like pyproject.toml. The default is the CPU
# build; a GPU image takes the CUDA build:
#   docker compose build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
# (or TORCH_INDEX_URL=... in .env, which docker-compose.yml passes on).

# --- build: may have compilers; only the virtualenv leaves this stage ---------------------
FROM python:3.11-slim AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install torch==2.13.0 --index-url "$TORCH_INDEX_URL"
# The dependencies alone, from pyproject.toml: this layer is rebuilt only when they change.
# The installed torch (2.13.0+cpu or +cu128) already satisfies the pin.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && pip install --no-deps open-clip-torch==3.3.0  # CLIP's BPE file only (clip_tokenizer.py)

# --- final: no build tools, a non-root user, a read-only root file system at run time -----
FROM python:3.11-slim
# The root file system is read-only when run by docker-compose.yml: caches and gunicorn's
# control socket go to /tmp (a tmpfs there); data goes to the /data volumes.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/cache \
    MPLCONFIGDIR=/tmp/matplotlib \
    IMAGINEER_STATIC_ROOT=/app/staticfiles
# uid 1000; /data's folders are owned by it, so that new named volumes mounted there are too.
RUN groupadd --gid 1000 imagineer \
    && useradd --uid 1000 --gid 1000 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin imagineer \
    && mkdir -p /data/media /data/models /data/training \
    && chown -R 1000:1000 /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY . .
# whitenoise's manifest is made here, once. The secret is a throwaway for this step only:
# settings.py refuses debug-off without one; nothing signed here outlives the build.
RUN DJANGO_DEBUG=0 DJANGO_SECRET_KEY=collectstatic-only IMAGINEER_VAR_DIR=/tmp/build \
    python manage.py collectstatic --noinput \
    && rm -rf /tmp/build
USER 1000:1000
EXPOSE 8000
# slim has no curl. Ask the app itself, as the first allowed host and as if through the TLS
# proxy (so neither ALLOWED_HOSTS nor the HTTPS redirect answers instead); only 200 passes.
# Only the parts this container serves decide: a stopped worker must not mark web unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import http.client, os; host = os.environ.get('DJANGO_ALLOWED_HOSTS', '').split(',')[0].strip().lstrip('.*') or 'localhost'; c = http.client.HTTPConnection('127.0.0.1', 8000, timeout=4); c.request('GET', '/api/health/?only=database,disk', headers={'Host': host, 'X-Forwarded-Proto': 'https'}); raise SystemExit(c.getresponse().status != 200)"]
CMD ["gunicorn", "imagineer.wsgi", "--bind", "0.0.0.0:8000"]
