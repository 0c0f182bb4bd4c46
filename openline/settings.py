"""OpenLine settings. Defaults are the embedded profile: SQLite, in-memory channel layer,
database task queue, everything in one process. Scale-out parts switch on by environment."""

from __future__ import annotations

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url

from openline.env import envbool, envint, envlist, envstr

# What OpenLine writes (the database, its journal, secrets, demo passwords) is for its own
# user only, from the first byte: files 0600 and directories 0700 for everything this
# process creates, whichever part creates it (SQLite makes its -wal and -shm files itself).
os.umask(0o077)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("OPENLINE_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)


def _secret_key() -> str:
    """A stable key for the embedded profile, generated once into var/ (created 0600, so
    it is never readable by others, not even for a moment)."""
    configured = envstr("SECRET_KEY")
    if configured:
        return configured
    key_file = VAR_DIR / "secret_key"
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(50))
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = envbool("DEBUG", False)
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["*"])
# Unset, webhook URLs point at this machine, which no provider can reach: `openline number
# add` says so.
PUBLIC_URL_SET = bool(envstr("OPENLINE_PUBLIC_URL"))
PUBLIC_URL = envstr("OPENLINE_PUBLIC_URL", f"http://127.0.0.1:{envint('PORT', 8000)}").rstrip("/")
SERVED_OVER_HTTPS = PUBLIC_URL.startswith("https://")
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
    "anymail",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "openline.core",
    "openline.contacts",
    "openline.billing",
    "openline.providers",
    "openline.messaging",
    "openline.console",
    "openline.chat",
    "openline.availability",
    "openline.alerts",
    "openline.campaigns",
    "openline.forms",
    "openline.reports",
    "openline.runtime",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed its second factor.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "openline.core.middleware.OrganizationMiddleware",
    "openline.core.middleware.SessionLimitsMiddleware",
    # A session passes the person's second factor (or sets one up where required) first.
    "openline.core.second_factor.SecondFactorMiddleware",
    # Last, as django-axes asks: it turns a refused sign-in into the "paused" page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "openline.urls"
ASGI_APPLICATION = "openline.asgi.application"
AUTH_USER_MODEL = "core.User"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
# django-axes refuses sign-ins that are being throttled before any password is checked; it
# has no get_user, so client.force_login and sessions still use the model backend.
AUTHENTICATION_BACKENDS = [
    "openline.core.security.SignInBackend",
    "django.contrib.auth.backends.ModelBackend",
]

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
    # Django's SQLite backend, whose transactions take turns at the write gate (its module).
    DATABASES["default"]["ENGINE"] = "openline.runtime.sqlite"
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
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No JIT compilation: OpenLine's queries are short, and the few with a per-row subquery
    # (a broadcast's audience counts) are estimated costly enough to be compiled, which
    # took 0.3-0.5 s, as long as running them (bench/README.md, "make bench-broadcast").
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
    # No persistent connections (Django's advice under ASGI). Every request runs in a thread
    # of its own, so a persistent connection outlived the thread that opened it and stayed
    # open until garbage collection: the test suite ran PostgreSQL out of connections ("too
    # many clients already"), as a busy server would. A request's connection now closes
    # when it ends; the background loops reconnect per batch (close_old_connections).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = envstr("REDIS_URL")

# Background tasks: the database queue by default (worker thread inside `openline run`).
TASKS = {
    "default": {
        "BACKEND": envstr("OPENLINE_TASK_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default", "dispatch"],
    }
}

# channels-redis waits on Redis up to 5 s at a time (BZPOPMIN), and redis-py's default read
# timeout is also 5 s: when they meet, receive() raised TimeoutError after 5 quiet seconds
# and a console hub stopped getting events. The read timeout must outlast that wait.
REDIS_LAYER_SOCKET_TIMEOUT = 30
CHANNEL_LAYERS = {
    "default": (
        {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": REDIS_LAYER_SOCKET_TIMEOUT}]
            },
        }
        if REDIS_URL
        else {"BACKEND": "openline.runtime.layers.EmbeddedChannelLayer"}
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
# How long a sandbox call rings on the simulated phone before it ends by its test suffix.
OPENLINE_SANDBOX_RING_SECONDS = envint("OPENLINE_SANDBOX_RING_SECONDS", 10)
# The scheduler's round (alert reminders can be a minute apart: keep it well under that),
# and how long a sending broadcast's runner may go without a turn before it restarts it.
OPENLINE_SCHEDULER_INTERVAL_SECONDS = envint("OPENLINE_SCHEDULER_INTERVAL_SECONDS", 10)
OPENLINE_BROADCAST_STALLED_SECONDS = envint("OPENLINE_BROADCAST_STALLED_SECONDS", 30)
# On SQLite the event loop writes webhook events itself while the write lock is free (see
# runtime.intake); off, a writer thread always does. With it on, a turn's webhooks that find
# the lock taken go to the overflow journal (runtime.journal) unless OPENLINE_INTAKE_JOURNAL is
# off (the writer thread takes them). Both are switches for measuring: bench/README.md.
OPENLINE_INTAKE_INLINE = envbool("OPENLINE_INTAKE_INLINE", True)
OPENLINE_INTAKE_JOURNAL = envbool("OPENLINE_INTAKE_JOURNAL", True)
OPENLINE_MAX_BODY_CHARS = 1600
# Credits per SMS segment and per started voice minute, by the recipient number's country
# (ISO 3166 code, as phonenumbers gives it). JSON in the environment, e.g.
# OPENLINE_CREDIT_RATES='{"US": {"sms": 1, "voice": 1}, "GB": {"sms": 3, "voice": 4}}'.
# A country not listed has no rate, and nothing is sent there.
_DEFAULT_RATES = '{"US": {"sms": 1, "voice": 1}, "CA": {"sms": 1, "voice": 1}}'
try:
    OPENLINE_CREDIT_RATES: dict[str, dict[str, int]] = json.loads(
        os.environ.get("OPENLINE_CREDIT_RATES") or _DEFAULT_RATES
    )
except ValueError as exc:
    raise SystemExit(f"OPENLINE_CREDIT_RATES is not valid JSON: {exc}") from None
# Key for field encryption (provider credentials); derived from SECRET_KEY unless given.
OPENLINE_FIELD_KEY = envstr("OPENLINE_FIELD_KEY", "")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(mode=0o700, exist_ok=True)
STATICFILES_DIRS: list[Path | tuple[str, Path]] = (
    [BASE_DIR / "node_modules" / "htmx.org" / "dist"]
    if (BASE_DIR / "node_modules" / "htmx.org" / "dist").exists()
    else []
)
# The voice recorder's WAV encoder, from npm like htmx: /static/wavefile/wavefile.js.
if (BASE_DIR / "node_modules" / "wavefile" / "dist").exists():
    STATICFILES_DIRS.append(("wavefile", BASE_DIR / "node_modules" / "wavefile" / "dist"))
# The reports page's charts, from npm like htmx: /static/chartjs/chart.umd.min.js.
if (BASE_DIR / "node_modules" / "chart.js" / "dist").exists():
    STATICFILES_DIRS.append(("chartjs", BASE_DIR / "node_modules" / "chart.js" / "dist"))
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- signing in and sessions (openline.core.security) ------------------------------------
# Failed sign-ins are counted per account and per address (django-axes, with OpenLine's
# handler): at the 5th within an hour signing in pauses for a minute, and each further
# failure doubles the pause, up to an hour. They are forgotten an hour after the last one,
# and an account's own failures when it signs in.
AXES_HANDLER = "openline.core.security.SignInAttempts"
AXES_FAILURE_LIMIT = 5
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_COOLOFF_TIME = timedelta(hours=1)  # how long failures are remembered
AXES_RESET_ON_SUCCESS = True
# Trying again while paused does not lengthen the pause: only passwords actually checked count.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "openline.core.security.sign_in_name"
AXES_LOCKOUT_CALLABLE = "openline.core.security.sign_in_paused"
OPENLINE_SIGN_IN_FIRST_PAUSE = timedelta(minutes=1)
OPENLINE_SIGN_IN_LONGEST_PAUSE = timedelta(hours=1)
# A session ends 12 hours after signing in whatever happens, and after the organization's
# idle timeout (Settings) without activity; see SessionLimitsMiddleware for what counts.
OPENLINE_SESSION_LIFETIME = timedelta(hours=12)
SESSION_COOKIE_AGE = int(OPENLINE_SESSION_LIFETIME.total_seconds())

# Passwords: at least OPENLINE_PASSWORD_MIN_LENGTH characters (12 unless set), not a common
# password, not all digits, not like the person's e-mail or name. A reset link works once,
# for an hour.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": envint("OPENLINE_PASSWORD_MIN_LENGTH", 12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_RESET_TIMEOUT = 3600
# An invitation link works once, for this many days; an admin can send it again.
OPENLINE_INVITATION_DAYS = envint("OPENLINE_INVITATION_DAYS", 7)
# The issuer shown in authenticator apps next to the person's e-mail.
OTP_TOTP_ISSUER = envstr("OPENLINE_TOTP_ISSUER", "OpenLine")

# --- e-mail (invitations, password resets) -------------------------------------------------
# SMTP by default (EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD[_FILE],
# EMAIL_USE_TLS / EMAIL_USE_SSL). OPENLINE_EMAIL_BACKEND picks another: "console" prints
# messages (development), "file" writes them under var/mail/, or any django-anymail backend's
# dotted path (e.g. anymail.backends.postmark.EmailBackend) with its ANYMAIL_* settings.
_EMAIL_BACKENDS = {
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
}
_email_backend = envstr("OPENLINE_EMAIL_BACKEND", "smtp")
EMAIL_BACKEND = _EMAIL_BACKENDS.get(_email_backend, _email_backend)
EMAIL_FILE_PATH = str(VAR_DIR / "mail")
EMAIL_HOST = envstr("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = envstr("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "OpenLine <openline@localhost>")
# ANYMAIL_<SETTING> (or ANYMAIL_<SETTING>_FILE for a secret) becomes ANYMAIL["<SETTING>"].
ANYMAIL = {
    name.removeprefix("ANYMAIL_"): envstr(name)
    for name in {key.removesuffix("_FILE") for key in os.environ if key.startswith("ANYMAIL_")}
}

# Cookies are never readable by scripts and not sent on cross-site requests (Lax still lets a
# link from an e-mail open the console). Served over HTTPS (OPENLINE_PUBLIC_URL is https://),
# they are sent only over HTTPS and browsers are told to use nothing else (HSTS). The scheme
# comes from the ASGI server: uvicorn takes X-Forwarded-Proto from a proxy it trusts
# (FORWARDED_ALLOW_IPS, 127.0.0.1 by default), so SECURE_PROXY_SSL_HEADER stays unset, which
# would let anyone who reaches the port directly claim HTTPS.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = SERVED_OVER_HTTPS
CSRF_COOKIE_SECURE = SERVED_OVER_HTTPS
SECURE_HSTS_SECONDS = envint("OPENLINE_HSTS_SECONDS", 365 * 24 * 3600) if SERVED_OVER_HTTPS else 0
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Content-Security-Policy on OpenLine's own pages: scripts and styles from this server only,
# no eval (htmx runs with allowEval off), sockets to this server, never framed. What other
# websites embed (the chat widget, its endpoints and the demo page) is theirs to police; the
# phone simulator and the API docs still carry inline code.
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/widget.js", "/widget-demo/", "/chat/", "/sandbox/", "/api/"],
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {
        "django_tasks_db": {"level": "WARNING"},
        "django_tasks": {"level": "WARNING"},
        # Failed and refused sign-ins are warnings; every success would be noise.
        "axes": {"level": "WARNING"},
    },
}
