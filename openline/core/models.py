from __future__ import annotations

import zoneinfo
from typing import ClassVar

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone {value!r}")


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    contact_info = models.CharField(
        max_length=200, blank=True, help_text="How people reach you besides texting."
    )
    welcome_text = models.TextField(blank=True)
    opt_out_text = models.TextField(blank=True)
    help_text = models.TextField(blank=True)
    max_conversations_per_counselor = models.PositiveIntegerField(default=5)
    # Members are signed out after this long without activity (Settings; core.security).
    DEFAULT_IDLE_TIMEOUT_MINUTES = 30
    IDLE_TIMEOUT_BOUNDS = (5, 720)
    idle_timeout_minutes = models.PositiveIntegerField(
        default=DEFAULT_IDLE_TIMEOUT_MINUTES,
        validators=[
            MinValueValidator(IDLE_TIMEOUT_BOUNDS[0]),
            MaxValueValidator(IDLE_TIMEOUT_BOUNDS[1]),
        ],
    )
    # Who must sign in with a second factor (core.second_factor): nobody, supervisors and
    # admins, or every member. A member who needs one and has none sets it up at sign-in.
    require_second_factor = models.CharField(
        max_length=20,
        choices=[
            ("none", "Nobody is required to"),
            ("managers", "Supervisors and admins"),
            ("everyone", "Every member"),
        ],
        default="none",
    )
    # A texter replies with this word to skip the pre-conversation survey (forms).
    survey_skip_word = models.CharField(max_length=20, default="SKIP", db_default="SKIP")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractUser):
    username = None  # type: ignore[assignment]
    email = models.EmailField(unique=True)
    display_name = models.CharField(max_length=120, blank=True)
    # Part of the session hash (get_session_auth_hash): raising it ends every session of
    # this person at their next request ("sign out everywhere", deactivation).
    session_epoch = models.PositiveIntegerField(default=0)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []
    # The stubs give every AbstractUser Django's username-based UserManager; an email-only
    # user replaces it, as Django's docs on custom users show.
    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]

    def __str__(self) -> str:
        return self.display_name or self.email

    def get_session_auth_hash(self) -> str:
        """Django's hash of the password, salted with the session epoch as well, so that
        both a new password and a raised epoch end the sessions signed in before them."""
        from django.utils.crypto import salted_hmac

        key_salt = f"openline.core.User.session.{self.session_epoch}"
        return salted_hmac(key_salt, self.password, algorithm="sha256").hexdigest()


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    SUPERVISOR = "supervisor", "Supervisor"
    COUNSELOR = "counselor", "Counselor"
    STAFF = "staff", "Staff"


class Membership(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.COUNSELOR)
    # Overrides the organization's max_conversations_per_counselor when set.
    max_conversations = models.PositiveIntegerField(null=True, blank=True)
    # Console notifications: what pops up ("new conversation alert", "new message alert"
    # for a message in one of mine) and how (desktop notification, sound).
    notify_new_conversation = models.BooleanField(default=True)
    notify_new_message = models.BooleanField(default=True)
    notify_desktop = models.BooleanField(default=True)
    notify_sound = models.BooleanField(default=True)
    # A deactivated member keeps their history (audit, transcripts name them) but cannot
    # sign in to this organization, receives no alerts and holds no conversations.
    is_active = models.BooleanField(default=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="uniq_membership")
        ]

    @property
    def can_manage(self) -> bool:
        return self.role in (Role.ADMIN, Role.SUPERVISOR)

    @property
    def conversation_limit(self) -> int:
        if self.max_conversations is not None:
            return self.max_conversations
        return self.organization.max_conversations_per_counselor


class Invitation(models.Model):
    """An invitation to join an organization with a role. The link carries a secret that
    is stored only hashed; it works once, until it expires or is withdrawn."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.COUNSELOR)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "email"])]


class TokenScope(models.TextChoices):
    READ = "read", "Read only"
    WRITE = "write", "Read and write"


class ApiToken(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12)
    token_hash = models.CharField(max_length=64, unique=True)
    # Tokens made before scopes existed could do everything: they stay read-write.
    scope = models.CharField(max_length=10, choices=TokenScope.choices, default=TokenScope.WRITE)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)


class AuditEvent(models.Model):
    """Who read, exported or changed what. Append-only."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    # Set when an integration (not a person) did it through the API.
    api_token = models.ForeignKey("core.ApiToken", null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=60, blank=True)
    # A short description that holds no message content ("counselor → supervisor").
    detail = models.CharField(max_length=200, blank=True)
    # Where a sign-in (or a failed one) came from: the address and the browser.
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "-created_at"]),
            models.Index(fields=["organization", "object_type", "object_id"]),
            models.Index(fields=["organization", "actor", "-created_at"]),
        ]
