"""OpenLine settings. Defaults are the embedded profile: SQLite, in-memory channel layer,
database task queue, everything in one process. Scale-out parts switch on by environment."""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url

from openline.env import envbool, envint, envlist, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("OPENLINE_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """A stable key for the embedded profile, generated once into var/."""
    configured = envstr("SECRET_KEY")
    if configured:
        return configured
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["*"])
PUBLIC_URL = envstr("OPENLINE_PUBLIC_URL", f"http://127.0.0.1:{envint('PORT', 8000)}").rstrip("/")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [PUBLIC_URL])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_tasks",
    "django_tasks_db",
    "ninja",
    "openline.core",
    "openline.contacts",
    "openline.providers",
    "openline.messaging",
    "openline.console",
    "openline.chat",
    "openline.availability",
    "openline.alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "openline.core.middleware.OrganizationMiddleware",
]

ROOT_URLCONF = "openline.urls"
ASGI_APPLICATION = "openline.asgi.application"
AUTH_USER_MODEL = "core.User"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Provider packages (openline/providers/<slug>/) may bring their own pages.
        "DIRS": sorted((BASE_DIR / "openline" / "providers").glob("*/templates")),
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "openline.core.context_processors.organization",
            ]
        },
    }
]

# Database: SQLite in WAL mode under var/ unless DATABASE_URL points elsewhere.
DATABASE_URL = envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'openline.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0 if envbool("OPENLINE_TESTING") else 600
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
            "PRAGMA busy_timeout=20000; PRAGMA foreign_keys=ON;"
        ),
    }
    # Tests use a file too: threads (intake writer, workers, live server) then share it
    # the way they do in production, with WAL and busy timeouts instead of the table
    # locks of an in-memory shared cache.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = envstr("REDIS_URL")

# Background tasks: the database queue by default (worker thread inside `openline run`).
TASKS = {
    "default": {
        "BACKEND": envstr("OPENLINE_TASK_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default", "dispatch"],
    }
}

CHANNEL_LAYERS = {
    "default": (
        {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
        if REDIS_URL
        else {"BACKEND": "openline.core.layers.EmbeddedChannelLayer"}
    )
}

OPENLINE_PROVIDERS = envlist(
    "OPENLINE_PROVIDERS",
    [
        "openline.providers.sandbox.provider.SandboxProvider",
        "openline.providers.twilio.provider.TwilioProvider",
    ],
)
# Largest webhook body accepted by the intake endpoint (Twilio bodies are ≤1600 characters).
# A waiting web chat whose visitor has been gone this long is closed as abandoned.
OPENLINE_CHAT_ABANDON_MINUTES = envint("OPENLINE_CHAT_ABANDON_MINUTES", 10)
OPENLINE_MAX_WEBHOOK_BYTES = envint("OPENLINE_MAX_WEBHOOK_BYTES", 64 * 1024)
# On SQLite the event loop writes webhook events itself while the write lock is free (see
# messaging.intake); off, a writer thread always does.
OPENLINE_INTAKE_INLINE = envbool("OPENLINE_INTAKE_INLINE", True)
OPENLINE_MAX_BODY_CHARS = 1600
# Key for field encryption (provider credentials); derived from SECRET_KEY unless given.
OPENLINE_FIELD_KEY = envstr("OPENLINE_FIELD_KEY", "")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = (
    [BASE_DIR / "node_modules" / "htmx.org" / "dist"]
    if (BASE_DIR / "node_modules" / "htmx.org" / "dist").exists()
    else []
)
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PUBLIC_URL.startswith("https://")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {"django_tasks_db": {"level": "WARNING"}, "django_tasks": {"level": "WARNING"}},
}
