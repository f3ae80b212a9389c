"""Settings for the sluice streaming example: no database, no apps, just
three streaming views (mysite/views.py) served by gunicorn behind sluice."""
import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")

# sluice terminates TLS and always sets X-Forwarded-Proto and
# X-Forwarded-Host (replacing whatever a client sent), so both are safe
# to trust here. Then request.is_secure() and build_absolute_uri() see
# https and the public host.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = True

ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"
INSTALLED_APPS = []
DATABASES = {}
USE_TZ = True

# No GZipMiddleware: compressing a stream in the app adds a buffer per
# response and burns the gunicorn worker's CPU. See
# docs/streaming-checklist.md.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
