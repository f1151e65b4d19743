"""Imagineer settings: one module, read from the environment.

Every setting but one has a development default, so a fresh clone runs with no
configuration (SQLite, the ORM broker, local media). `.env.example` lists them all.
The exception is debug: it is off unless DJANGO_DEBUG says otherwise, so a process started
without configuration (the Docker image run on its own, a forgotten variable) runs as
production, and production refuses to start without DJANGO_SECRET_KEY. `make run` and the
test suite turn debug on themselves.
"""

import os
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from generation.engine.device import compile_mode

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=""):
    return os.environ.get(name, default)


TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def env_bool(name, default=False):
    """True or false by the usual spellings; any other value stops the start (a typo is
    not read as false)."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    if value.strip().lower() in TRUE:
        return True
    if value.strip().lower() in FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r}: use one of {', '.join(TRUE)} or {', '.join(FALSE)}.")


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name, default=""):
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def env_fraction(name, default):
    """A number from 0 to 1; anything else stops the start with a message naming it."""
    value = env(name).strip()
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is None or not 0 <= number <= 1:
        sys.exit(f"{name} must be a number from 0 to 1 (e.g. 0.1); got {value!r}.")
    return number


VAR_DIR = Path(env("IMAGINEER_VAR_DIR", str(BASE_DIR / "var")))

# Off unless asked for: `make run` and the tests (imagineer/tests/development.py) set
# DJANGO_DEBUG=1; production needs nothing, and cannot forget it.
DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = env("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        sys.exit(
            "DJANGO_SECRET_KEY is not set. Make one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    SECRET_KEY = "insecure-development-key-only-used-with-DJANGO_DEBUG-on"  # noqa: S105 (used only with DJANGO_DEBUG on; production refuses it)

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "corsheaders",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from here: no CDN
    "django_q",
    "axes",
    # Ours last: their post_migrate handlers then run after contrib.auth's.
    "accounts",
    "workers",
    "albums",
    "generation",
    "training",
]

MIDDLEWARE = [
    "accounts.middleware.RequestIdMiddleware",
    "accounts.middleware.AccessLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.SecurityLogMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "imagineer.urls"
WSGI_APPLICATION = "imagineer.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.views.signup_policy",
                "accounts.views.nsfw_display",
            ],
        },
    },
]

# Database: DATABASE_URL, or a SQLite file under var/ (the embedded default).
# SQLite is shared by the web server and the worker, so it runs in WAL mode with a
# busy timeout and IMMEDIATE transactions: neither side meets "database is locked".
DEFAULT_SQLITE = VAR_DIR / "imagineer.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{DEFAULT_SQLITE}"), conn_max_age=0
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so that worker processes started by tests share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
    VAR_DIR.mkdir(parents=True, exist_ok=True)
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No JIT: it compiles any query the planner costs above 100,000, which the library's
    # lists and searches are (visibility subqueries over a million images) though they
    # read a page: 2.2 s of compiling for a 94 ms search (docs/performance.md).
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    # First: refuses every password check (sign-in page, admin, API) while locked out.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static files and media
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("IMAGINEER_STATIC_ROOT", str(VAR_DIR / "static")))
MEDIA_ROOT = Path(env("IMAGINEER_MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Where media (images, thumbnails, uploaded and trained LoRAs) live: "local" (MEDIA_ROOT)
# or "s3", any S3-compatible bucket (AWS, MinIO, R2...) through django-storages. With s3,
# every web server and worker shares the bucket and nothing is written under MEDIA_ROOT;
# workers copy the model files they load to IMAGINEER_MODEL_CACHE.
IMAGINEER_STORAGE = env("IMAGINEER_STORAGE", "local")
if IMAGINEER_STORAGE == "s3":
    if not env("IMAGINEER_S3_BUCKET"):
        sys.exit("IMAGINEER_STORAGE=s3 needs IMAGINEER_S3_BUCKET, the name of the bucket.")
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env("IMAGINEER_S3_BUCKET"),
            "endpoint_url": env("IMAGINEER_S3_ENDPOINT_URL") or None,
            "region_name": env("IMAGINEER_S3_REGION") or None,
            "addressing_style": env("IMAGINEER_S3_ADDRESSING_STYLE") or None,
            # Unset: boto3 finds credentials itself (AWS_* variables, an instance role).
            "access_key": env("IMAGINEER_S3_ACCESS_KEY_ID") or None,
            "secret_key": env("IMAGINEER_S3_SECRET_ACCESS_KEY") or None,
            # Never replace a file, as on a local disk: a name taken gets a suffix.
            "file_overwrite": False,
            "default_acl": None,  # private, as the bucket's policy says; files go via views
            # A file read from the bucket is held in memory up to this size, then on disk.
            "max_memory_size": 16 * 1024 * 1024,
        },
    }
elif IMAGINEER_STORAGE != "local":
    sys.exit(f'IMAGINEER_STORAGE must be "local" or "s3", not {IMAGINEER_STORAGE!r}')

# Images (albums app). Uploads over these limits are refused with 400, nothing stored.
IMAGINEER_MAX_IMAGE_PIXELS = env_int("IMAGINEER_MAX_IMAGE_PIXELS", 40_000_000)
IMAGINEER_MAX_UPLOAD_BYTES = env_int("IMAGINEER_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
# Dataset imports (zip files): entries, total uncompressed bytes, the compression ratio
# of one entry that marks a zip bomb, and the size of one caption file.
IMAGINEER_IMPORT_MAX_ENTRIES = env_int("IMAGINEER_IMPORT_MAX_ENTRIES", 10_000)
IMAGINEER_IMPORT_MAX_BYTES = env_int("IMAGINEER_IMPORT_MAX_BYTES", 2 * 1024 * 1024 * 1024)
IMAGINEER_IMPORT_MAX_RATIO = env_int("IMAGINEER_IMPORT_MAX_RATIO", 100)
IMAGINEER_IMPORT_MAX_CAPTION_BYTES = env_int("IMAGINEER_IMPORT_MAX_CAPTION_BYTES", 64 * 1024)
# Anonymous visitors may browse public albums (read-only) when on.
IMAGINEER_PUBLIC_GALLERY = env_bool("IMAGINEER_PUBLIC_GALLERY")
# How image files are sent: "" streams them from Django; "nginx" answers with
# X-Accel-Redirect to IMAGINEER_SENDFILE_PREFIX + the storage name (an internal location
# aliased to the media root); "apache" answers with X-Sendfile and the file's full path.
IMAGINEER_SENDFILE = env("IMAGINEER_SENDFILE")
if IMAGINEER_SENDFILE not in ("", "nginx", "apache"):
    sys.exit(f'IMAGINEER_SENDFILE must be "", "nginx" or "apache", not {IMAGINEER_SENDFILE!r}')
if IMAGINEER_SENDFILE and IMAGINEER_STORAGE != "local":
    sys.exit("IMAGINEER_SENDFILE needs IMAGINEER_STORAGE=local: the web server sends files "
             "from the media root. With s3, leave it empty (Django streams the files).")
IMAGINEER_SENDFILE_PREFIX = env("IMAGINEER_SENDFILE_PREFIX", "/protected-media/")
# Automatic captions: a transformers image-to-text model, as a hub id (for example
# Salesforce/blip-image-captioning-base) or a local directory saved with save_pretrained.
# Empty: automatic captioning is off and the pages do not offer it.
IMAGINEER_CAPTION_MODEL = env("IMAGINEER_CAPTION_MODEL")
# Automatic NSFW flags (generation/nsfw.py): a transformers image-classification model with
# an "nsfw" label (Falconsai/nsfw_image_detection, or a folder saved with save_pretrained),
# run by the workers on generated, uploaded and imported images. A hub id is downloaded
# only with IMAGINEER_HUB_DOWNLOADS=1; otherwise it must be in the local cache. Empty: off.
IMAGINEER_NSFW_MODEL = env("IMAGINEER_NSFW_MODEL")
# The score (0 to 1) from which an image is flagged: the initial site setting
# `nsfw_threshold`, which admins then change in the admin or the API.
IMAGINEER_NSFW_THRESHOLD = env_fraction("IMAGINEER_NSFW_THRESHOLD", 0.8)
# Per-user limits on what costs disk or CPU (accounts/limits.py); admins are exempt.
# The storage quota in bytes of each user's images and models (0: none); an admin sets a
# user's own on the user's page in the admin.
IMAGINEER_STORAGE_QUOTA_BYTES = env_int("IMAGINEER_STORAGE_QUOTA_BYTES", 10 * 1024 ** 3)


def env_rate(name, default):
    """A DRF throttle rate, "<count>/<second|minute|hour|day>"; anything else stops the
    start with a message naming it."""
    value = env(name, default).strip()
    count, _, period = value.partition("/")
    if not (count.isdigit() and int(count) > 0 and period[:1] in ("s", "m", "h", "d")):
        sys.exit(f"{name} must be a rate such as 20/hour (a count per second, minute, hour "
                 f"or day); got {value!r}.")
    return value


# Requests per user and period, each scope counted alone: 429 with Retry-After past it.
IMAGINEER_THROTTLE_RATES = {
    "uploads": env_rate("IMAGINEER_THROTTLE_UPLOADS", "120/hour"),
    "imports": env_rate("IMAGINEER_THROTTLE_IMPORTS", "20/hour"),
    "captioning": env_rate("IMAGINEER_THROTTLE_CAPTIONING", "10/hour"),
    "model_uploads": env_rate("IMAGINEER_THROTTLE_MODEL_UPLOADS", "20/day"),
    "training": env_rate("IMAGINEER_THROTTLE_TRAINING", "10/day"),
    "scraping": env_rate("IMAGINEER_THROTTLE_SCRAPING", "10/hour"),
}
# Which backend captions (albums/captioning.py): "local" (the model above) or "anthropic"
# (a vision LLM through Anthropic's Messages API; the key from ANTHROPIC_API_KEY). The
# model, the prompt, the long side images are shrunk to before sending (cost grows with
# pixels), the retries of 429/5xx answers (with backoff) and an API base URL (a proxy; tests
# point it at a local server). An empty prompt is the built-in one.
IMAGINEER_CAPTION_BACKEND = env("IMAGINEER_CAPTION_BACKEND", "local")
if IMAGINEER_CAPTION_BACKEND not in ("local", "anthropic"):
    sys.exit(f'IMAGINEER_CAPTION_BACKEND must be "local" or "anthropic", '
             f"not {IMAGINEER_CAPTION_BACKEND!r}")
ANTHROPIC_API_KEY = env("ANTHROPIC_API_KEY")
IMAGINEER_ANTHROPIC_MODEL = env("IMAGINEER_ANTHROPIC_MODEL", "claude-haiku-4-5")
IMAGINEER_ANTHROPIC_BASE_URL = env("IMAGINEER_ANTHROPIC_BASE_URL")
IMAGINEER_CAPTION_PROMPT = env("IMAGINEER_CAPTION_PROMPT")
IMAGINEER_CAPTION_MAX_SIDE = env_int("IMAGINEER_CAPTION_MAX_SIDE", 768)
IMAGINEER_CAPTION_MAX_RETRIES = env_int("IMAGINEER_CAPTION_MAX_RETRIES", 4)
# Scrape runs (albums/scrape.py, albums/fetch.py): the user agent sent, the seconds to
# wait between two requests to the same host, the timeout of a request, the most bytes of
# one answer (a page or an image), and, for the test suite only, fetching from loopback
# (127.0.0.1, ::1); `check --deploy` warns when it is on.
IMAGINEER_SCRAPE_USER_AGENT = env("IMAGINEER_SCRAPE_USER_AGENT",
                                  "ImagineerBot/0.1 (+https://github.com/imagineer)")
IMAGINEER_SCRAPE_HOST_DELAY = float(env("IMAGINEER_SCRAPE_HOST_DELAY", "1"))
IMAGINEER_SCRAPE_TIMEOUT = float(env("IMAGINEER_SCRAPE_TIMEOUT", "10"))
IMAGINEER_SCRAPE_MAX_BYTES = env_int("IMAGINEER_SCRAPE_MAX_BYTES", 20 * 1024 * 1024)
IMAGINEER_SCRAPE_ALLOW_LOOPBACK = env_bool("IMAGINEER_SCRAPE_ALLOW_LOOPBACK")
# Uploads over 2.5 MB go to a temporary file, not memory; at most this many files a request.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("IMAGINEER_UPLOAD_MAX_FILES", 100)
FILE_UPLOAD_PERMISSIONS = 0o644

# Sign-in (django-allauth): email and password; Google when configured.
SITE_ID = 1
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGIN_METHODS = {"email"}
# The username is optional: left empty, the account gets a random one (user-xxxxxx), never
# one made from the email address, which pages would show to other users.
ACCOUNT_SIGNUP_FIELDS = ["email*", "username", "password1*", "password2*"]
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
# Who may sign up (accounts/adapters.py): "open" (anyone), "invite" (only from an admin's
# invite link, which expires after IMAGINEER_INVITE_DAYS) or "closed" (admins make accounts).
IMAGINEER_SIGNUP = env("IMAGINEER_SIGNUP", "invite")
if IMAGINEER_SIGNUP not in ("open", "invite", "closed"):
    sys.exit(f'IMAGINEER_SIGNUP must be "open", "invite" or "closed", not {IMAGINEER_SIGNUP!r}')
IMAGINEER_INVITE_DAYS = env_int("IMAGINEER_INVITE_DAYS", 7)
# With open sign-up an address must be verified before its account signs in (anyone could
# sign up with somebody else's); an invite link verifies its address itself.
ACCOUNT_EMAIL_VERIFICATION = env("IMAGINEER_EMAIL_VERIFICATION",
                                 "mandatory" if IMAGINEER_SIGNUP == "open" else "none")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_GET = False
GOOGLE_CLIENT_ID = env("GOOGLE_CLIENT_ID")
GOOGLE_CLIENT_SECRET = env("GOOGLE_CLIENT_SECRET")
SOCIALACCOUNT_PROVIDERS = {}
if GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET:
    SOCIALACCOUNT_PROVIDERS["google"] = {
        "APPS": [{"client_id": GOOGLE_CLIENT_ID, "secret": GOOGLE_CLIENT_SECRET, "key": ""}],
        "SCOPE": ["profile", "email"],
    }
GOOGLE_SIGNIN_ENABLED = bool(SOCIALACCOUNT_PROVIDERS)
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
EMAIL_BACKEND = env("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")

# Sign-in throttling (django-axes), for every form that checks a password: the sign-in
# page, the admin and the API. After IMAGINEER_SIGNIN_FAILURE_LIMIT failures within the
# cool-off, an account is locked whatever address tries it, and an address is locked
# whatever account it tries; each for IMAGINEER_SIGNIN_COOLOFF_MINUTES from the last
# counted failure. Admins unlock early by deleting the "Access attempts" in the admin.
AXES_FAILURE_LIMIT = env_int("IMAGINEER_SIGNIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("IMAGINEER_SIGNIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# An email and a username of the same account count as one account.
AXES_USERNAME_CALLABLE = "accounts.throttling.attempted_account"
AXES_CLIENT_IP_CALLABLE = "accounts.middleware.client_address"
AXES_LOCKOUT_CALLABLE = "accounts.throttling.locked_out"
# Attempts while locked out are refused and logged but do not extend the lockout.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# Every failed sign-in is kept as a row ("Access failures" in the admin): the audit trail.
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# django-axes does allauth's job of counting failed sign-ins: one rule, in one place.
ACCOUNT_RATE_LIMITS = {"login_failed": None}
# Reverse proxies in front of Django that append the client's address to
# X-Forwarded-For. 0: the header is ignored and the connection's address is the client's.
IMAGINEER_PROXY_COUNT = env_int("IMAGINEER_PROXY_COUNT", 0)

# The API
REST_FRAMEWORK = {
    # Token first: a failed token answers 401 with WWW-Authenticate, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "core.api.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
}

# The API's documentation (drf-spectacular): the OpenAPI schema at /api/schema/ and Swagger
# UI at /api/docs/. Anyone may read both, signed in or not: they describe the API's shape,
# never its data, and every operation still asks for its own credentials.
SPECTACULAR_SETTINGS = {
    "TITLE": "Imagineer API",
    "DESCRIPTION": (
        "Generate images, curate albums and train LoRAs. Authenticate with "
        "`Authorization: Token <key>` (get a key from `POST /api/token/` or the API token "
        "page) or a signed-in session. A walk-through with curl: docs/api.md."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],  # the same schema for everyone: credentials play no part
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No validator badge: it would fetch from validator.swagger.io, outside the CSP.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "albums.files.document_file_urls",  # image downloads are plain Django views
    ],
    "ENUM_NAME_OVERRIDES": {
        "GenerationStatusEnum": "generation.models.Status",
        # Training runs and caption runs: LeasedWork's statuses (one choice set, one name).
        "LeasedWorkStatusEnum": "workers.models.Status",
        "SchedulerEnum": "generation.validation.SCHEDULERS",
    },
}

# CORS (audit CRITICAL-5): browser origins allowed to call /api/. Empty: same origin only.
CORS_ALLOWED_ORIGINS = env_list("IMAGINEER_CORS_ORIGINS")
CORS_URLS_REGEX = r"^/api/.*$"

# The job queue: django-q2 on the ORM broker, or Redis when IMAGINEER_REDIS_URL is set.
IMAGINEER_REDIS_URL = env("IMAGINEER_REDIS_URL")
Q_CLUSTER = {
    "name": env("IMAGINEER_CLUSTER_NAME", "imagineer"),
    "workers": env_int("IMAGINEER_WORKERS", 1),
    "timeout": env_int("IMAGINEER_JOB_TIMEOUT", 1800),
    "retry": env_int("IMAGINEER_JOB_RETRY", 1860),
    "max_attempts": env_int("IMAGINEER_JOB_MAX_ATTEMPTS", 3),
    "ack_failures": True,
    # A worker process is replaced by a fresh one after this many tasks, or after a task
    # that left it past IMAGINEER_WORKER_MAX_RSS_MB (its peak resident memory): slow
    # leaks (allocator fragmentation, caches) never build up. Each task is a token that
    # runs at least one job (generation.tasks.run_next_job); the new process loads its
    # pipeline again at its first job.
    "recycle": env_int("IMAGINEER_WORKER_RECYCLE", 500),
    "max_rss": env_int("IMAGINEER_WORKER_MAX_RSS_MB", 0) * 1024 or None,
    "catch_up": False,
    "poll": 0.5,
    "label": "Task queue",
    # Training runs go to their own cluster so that a long run never blocks generation:
    # start it with `Q_CLUSTER_NAME=training python manage.py qcluster`.
    "ALT_CLUSTERS": {
        "training": {
            "timeout": env_int("IMAGINEER_TRAINING_TIMEOUT", 12 * 3600),
            "retry": env_int("IMAGINEER_TRAINING_TIMEOUT", 12 * 3600) + 60,
            "max_attempts": env_int("IMAGINEER_TRAINING_MAX_ATTEMPTS", 3),
            "workers": 1,
        }
    },
}
if IMAGINEER_REDIS_URL:
    Q_CLUSTER["redis"] = IMAGINEER_REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# The cache is shared by every process (web processes, gunicorn workers, qcluster
# workers), so that the site settings an admin saves are seen by all at their next
# request: Redis when configured, else a table of the database they already share
# (created by generation's migration 0003). django-q2 writes its cluster stats every half
# second: those stay in each process's memory, as before, not in the database.
if IMAGINEER_REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": IMAGINEER_REDIS_URL, "KEY_PREFIX": "imagineer"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache",
                          "LOCATION": "imagineer_cache"}}
CACHES["django_q"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
Q_CLUSTER["cache"] = "django_q"

# Security headers. Production turns on HSTS, secure cookies and the SSL redirect.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
if not DEBUG:
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    # /metrics answers plain HTTP too: Prometheus scrapes it on the private network
    # (docker-compose.yml's monitoring profile), with no TLS proxy in between. Its bearer
    # token is the scraper's own, not a user's.
    SECURE_REDIRECT_EXEMPT = [r"^metrics$"]
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto. Every connection then comes
# from the proxy: without IMAGINEER_PROXY_COUNT every client would share its address, and
# five wrong passwords from anyone would lock the whole site out (sign-in throttling).
if env_bool("DJANGO_BEHIND_TLS_PROXY"):
    if IMAGINEER_PROXY_COUNT < 1:
        sys.exit("DJANGO_BEHIND_TLS_PROXY=1 needs IMAGINEER_PROXY_COUNT, the number of proxies "
                 "that append to X-Forwarded-For (1 for one nginx or Caddy): with 0, every "
                 "client shares the proxy's address and sign-in throttling locks them all out.")
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp): our pages need no inline scripts or styles.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF, "https://accounts.google.com"],
        "frame-ancestors": [NONE],
    }
}

# Logging: JSON lines with the request id. The `security` logger records sign-ins,
# failed sign-ins, permission denials and role changes; the `access` logger one line per
# request (accounts.middleware.AccessLogMiddleware), at INFO.
LOG_LEVEL = env("IMAGINEER_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "accounts.middleware.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "security": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "access": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}

# Generation: defaults for every field but the prompt, limits and the worker. The defaults,
# the four limits and IMAGINEER_MAX_BATCH are the initial site settings (generation's
# SiteSettings): once an admin saves those, the saved values win.
IMAGINEER_GENERATION_DEFAULTS = {
    "negative_prompt": env("IMAGINEER_DEFAULT_NEGATIVE_PROMPT", ""),
    "width": env_int("IMAGINEER_DEFAULT_WIDTH", 512),
    "height": env_int("IMAGINEER_DEFAULT_HEIGHT", 512),
    "steps": env_int("IMAGINEER_DEFAULT_STEPS", 25),
    "guidance_scale": float(env("IMAGINEER_DEFAULT_GUIDANCE", "7.5")),
    "scheduler": env("IMAGINEER_DEFAULT_SCHEDULER", "pndm"),
    "num_images": 1,
}
IMAGINEER_JOBS_PER_MINUTE = env_int("IMAGINEER_JOBS_PER_MINUTE", 10)
IMAGINEER_BATCHES_PER_HOUR = env_int("IMAGINEER_BATCHES_PER_HOUR", 3)
IMAGINEER_MAX_ACTIVE_JOBS = env_int("IMAGINEER_MAX_ACTIVE_JOBS", 10)
# Editors' own limits (the three above are the viewers'); unset (None): the viewers' values.
IMAGINEER_EDITOR_JOBS_PER_MINUTE = env_int("IMAGINEER_EDITOR_JOBS_PER_MINUTE", None)
IMAGINEER_EDITOR_BATCHES_PER_HOUR = env_int("IMAGINEER_EDITOR_BATCHES_PER_HOUR", None)
IMAGINEER_EDITOR_MAX_ACTIVE_JOBS = env_int("IMAGINEER_EDITOR_MAX_ACTIVE_JOBS", None)
IMAGINEER_MAX_QUEUE = env_int("IMAGINEER_MAX_QUEUE", 100)
IMAGINEER_MAX_BATCH = env_int("IMAGINEER_MAX_BATCH", 4)
IMAGINEER_IDLE_UNLOAD_SECONDS = env_int("IMAGINEER_IDLE_UNLOAD_SECONDS", 600)
IMAGINEER_MAX_LOADED_LORAS = env_int("IMAGINEER_MAX_LOADED_LORAS", 8)
# Compiled mode for generation workers (off by default): 1 (torch.compile's "default"
# mode) or a mode name (reduce-overhead, ...). The UNet is compiled when the worker loads
# a base; the first job of each image size and batch pays for compiling. See
# generation/engine/device.py and docs/performance.md ("GPU").
try:
    IMAGINEER_COMPILE = compile_mode(env("IMAGINEER_COMPILE"))
except ValueError as error:
    sys.exit(str(error))
# A running job whose worker sent no heartbeat for this long is given back to the queue.
IMAGINEER_JOB_LEASE_SECONDS = env_int("IMAGINEER_JOB_LEASE_SECONDS", 120)
IMAGINEER_JOB_MAX_ATTEMPTS = env_int("IMAGINEER_JOB_MAX_ATTEMPTS", 3)
# A generation job running longer than this (seconds, from its start) is stopped at its
# next step and fails with error_type "timeout"; the worker goes on with the next job.
# 0: no limit. See generation.tasks.run_jobs and docs/deploy.md ("Time limits").
IMAGINEER_JOB_TIME_LIMIT = env_int("IMAGINEER_JOB_TIME_LIMIT", 600)
IMAGINEER_MODEL_DIR = Path(env("IMAGINEER_MODEL_DIR", str(VAR_DIR / "models")))
IMAGINEER_MODEL_CACHE = Path(env("IMAGINEER_MODEL_CACHE", str(VAR_DIR / "model-cache")))
# Where registered models may be loaded from (generation.rules.check_model_source).
# Local folders and files only inside IMAGINEER_MODEL_DIR and these folders (comma-
# separated); symbolic links count by where they lead. Hugging Face hub ids only with
# IMAGINEER_HUB_DOWNLOADS=1: the workers download what an editor names, from anyone's
# repository. Both are checked when a model is registered and when a worker loads it.
IMAGINEER_MODEL_ROOTS = list(dict.fromkeys(
    [IMAGINEER_MODEL_DIR, *(Path(root) for root in env_list("IMAGINEER_MODEL_ROOTS"))]))
IMAGINEER_HUB_DOWNLOADS = env_bool("IMAGINEER_HUB_DOWNLOADS")
# Training runs: checkpoints and working files, one folder per run on the training worker's
# local disk (a retried run resumes from its checkpoint there). A run that a worker started
# this many times (each crash or timeout is one) fails instead of being queued again.
IMAGINEER_TRAINING_DIR = Path(env("IMAGINEER_TRAINING_DIR", str(VAR_DIR / "training")))
IMAGINEER_TRAINING_MAX_ATTEMPTS = env_int("IMAGINEER_TRAINING_MAX_ATTEMPTS", 3)

# Metrics, health and error reporting (README, "Metrics and health").
# /metrics (Prometheus) is off (404) unless this token is set; then scrapers send
# `Authorization: Bearer <token>`.
IMAGINEER_METRICS_TOKEN = env("IMAGINEER_METRICS_TOKEN")
# /api/health/ answers 503 when a cluster (the default one, training) has no worker seen
# for this many seconds; workers record a heartbeat a few times within it.
IMAGINEER_HEALTH_WORKER_TIMEOUT = env_int("IMAGINEER_HEALTH_WORKER_TIMEOUT", 120)
# ... and when the disk of the media root has less free space than this (local media only).
IMAGINEER_HEALTH_MIN_FREE_MB = env_int("IMAGINEER_HEALTH_MIN_FREE_MB", 1024)
# Sentry: errors of the web server and the workers (unhandled exceptions and error logs)
# go to this DSN when it is set; no personal data (cookies, headers, user ids) is sent.
SENTRY_DSN = env("SENTRY_DSN")
# The share of requests and tasks whose timings (traces) go to Sentry's performance
# monitoring: 0 (the default) sends none, 1 all of them.
SENTRY_TRACES_SAMPLE_RATE = env_fraction("SENTRY_TRACES_SAMPLE_RATE", 0.0)
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        integrations=[DjangoIntegration()],
        environment=env("SENTRY_ENVIRONMENT", "development" if DEBUG else "production"),
        release=env("SENTRY_RELEASE") or None,  # None: the SDK finds one (git, env)
        traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
        send_default_pii=False,
    )
