# One image for every process of the billing service: web (the default command),
# Celery worker, Celery beat and the migrate job (docker-compose.yml shows each command).
# Every dependency ships as a binary wheel (psycopg2-binary among them), so one slim
# stage needs no compiler and a builder stage would save nothing.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production

# A fixed numeric id lets orchestrators verify runAsNonRoot and lets volumes be chowned.
RUN groupadd --system --gid 10001 billing \
    && useradd --system --uid 10001 --gid billing --create-home --home-dir /home/billing \
        --shell /usr/sbin/nologin billing

WORKDIR /app

# Dependencies first: this layer is reused until requirements.txt changes.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# The code stays owned by root, so the running service cannot rewrite itself.
COPY . .

# Production settings refuse to load without these. collectstatic connects to neither the
# database nor the broker, and values set on a RUN line never reach the running container,
# which must receive the real ones.
RUN DJANGO_SECRET_KEY=collectstatic-build-only \
    DATABASE_URL=postgres://build@localhost:5432/build \
    CELERY_BROKER_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --no-input --verbosity 0

USER 10001:10001

EXPOSE 8000

# Liveness of gunicorn. slim has no curl, hence urllib. The Host header is the first of
# DJANGO_ALLOWED_HOSTS, since Django answers 400 to a host it does not serve.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; h = os.environ.get('DJANGO_ALLOWED_HOSTS', '').split(',')[0].strip().lstrip('.'); u.urlopen(u.Request('http://127.0.0.1:8000/healthz/', headers={'Host': h if h not in ('', '*') else 'localhost'}), timeout=4)"]

CMD ["gunicorn", "--config", "config/gunicorn.conf.py", "config.wsgi:application"]
