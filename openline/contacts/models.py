from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from openline.core.models import Organization


class NumberType(models.TextChoices):
    MOBILE = "mobile", "Mobile"
    LANDLINE = "landline", "Landline"
    VOIP = "voip", "VoIP"
    UNKNOWN = "unknown", "Unknown"


# Only these can receive texts; staff correct the type when the lookup guessed wrong.
TEXTABLE_TYPES = frozenset({NumberType.MOBILE, NumberType.UNKNOWN})


class Tag(models.Model):
    """A label staff put on contacts ("swim team", "Saturday class") to build audiences."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    name = models.CharField(max_length=60)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="uniq_tag_name")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    name = models.CharField(max_length=200, blank=True)
    phone = models.CharField(max_length=20, blank=True, help_text="E.164; empty for chat visitors")
    number_type = models.CharField(
        max_length=10, choices=NumberType.choices, default=NumberType.UNKNOWN
    )
    notes = models.TextField(blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="contacts")
    # Another number of the same person (a family's second mobile, a work phone): this row
    # is that number, with its own type, conversations and consent; tags and custom fields
    # belong to the person (the primary row). Never a chain: a primary has no primary.
    primary = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="other_numbers"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # Web-chat visitors have no phone number (phone="").
            models.UniqueConstraint(
                fields=["organization", "phone"],
                condition=~models.Q(phone=""),
                name="uniq_contact_phone",
            )
        ]
        indexes = [models.Index(fields=["organization", "name"])]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """The name, else the number written the way people read it."""
        from openline.contacts.phones import format_phone

        if not self.phone:
            return self.name or f"Web visitor {self.pk}"
        return self.name or format_phone(self.phone)

    @property
    def is_textable(self) -> bool:
        return self.number_type in TEXTABLE_TYPES


class FieldKind(models.TextChoices):
    TEXT = "text", "Text"
    NUMBER = "number", "Number"
    DATE = "date", "Date"
    CHOICE = "choice", "Choice"


class CustomField(models.Model):
    """A field an organization keeps about its contacts ("Class", "Birthday", "Balance"),
    usable in audiences and as a merge field ``{key}`` in broadcasts."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    name = models.CharField(max_length=60)
    key = models.SlugField(max_length=40, help_text="Its merge field: {key}")
    kind = models.CharField(max_length=10, choices=FieldKind.choices, default=FieldKind.TEXT)
    choices = models.JSONField(default=list, blank=True, help_text="For a choice field")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"], name="uniq_field_key"),
            models.UniqueConstraint(fields=["organization", "name"], name="uniq_field_name"),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FieldValue(models.Model):
    """One contact's value of one custom field, in the column of its kind (so audiences
    compare numbers as numbers and dates as dates, in the database)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="field_values")
    field = models.ForeignKey(CustomField, on_delete=models.CASCADE, related_name="values")
    text = models.CharField(max_length=500, blank=True)  # text and choice, and the display
    number = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    date = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "field"], name="uniq_field_value")
        ]
        indexes = [
            models.Index(fields=["field", "text"]),
            models.Index(fields=["field", "number"]),
            models.Index(fields=["field", "date"]),
        ]


class ConsentKind(models.TextChoices):
    OPT_IN = "opt_in", "Opt-in"
    OPT_OUT = "opt_out", "Opt-out"
    HELP = "help", "Help request"
    # A free-text request ("please stop texting me"): automated and bulk messages stop at
    # once; a person confirms it (opt_out) or dismisses it (request_dismissed).
    OPT_OUT_REQUEST = "opt_out_request", "Opt-out request (to confirm)"
    REQUEST_DISMISSED = "request_dismissed", "Opt-out request dismissed"
    # We asked the person to confirm an opt-in ("reply YES"): until they answer (or another
    # opt-in/opt-out settles it), YES from them is an opt-in, not conversation text.
    OPT_IN_REQUEST = "opt_in_request", "Opt-in confirmation requested"
    # Calls, kept apart from texts: the organization's voice do-not-call list is the
    # numbers whose newest of these two is a VOICE_OPT_OUT (contacts.selectors).
    VOICE_OPT_OUT = "voice_opt_out", "Voice opt-out (do not call)"
    VOICE_OPT_IN = "voice_opt_in", "Voice opt-out removed"


class ConsentSource(models.TextChoices):
    KEYWORD = "keyword", "Keyword"
    STAFF = "staff", "Staff"
    IMPORT = "import", "Import"
    API = "api", "API"
    PROVIDER = "provider", "Provider"
    MESSAGE = "message", "Message text"
    KEYPRESS = "keypress", "Key pressed on a call"


class ConsentEvent(models.Model):
    """The consent ledger. Rows are only ever inserted; state is derived from them."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    phone = models.CharField(max_length=20)
    number = models.ForeignKey("providers.Number", null=True, blank=True, on_delete=models.SET_NULL)
    kind = models.CharField(max_length=20, choices=ConsentKind.choices)
    source = models.CharField(max_length=10, choices=ConsentSource.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    text = models.TextField(blank=True, help_text="The exact text received or shown.")
    evidence = models.TextField(blank=True, help_text="How consent was given.")
    # Recorded through a simulated carrier (the sandbox's phone simulator). It counts only
    # for texts through simulated numbers: nobody can change a real phone's consent for a
    # real number by typing its digits into the simulator.
    simulated = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "phone", "created_at"])]
        ordering = ["created_at", "id"]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("consent events are append-only")
        # The stubs type pk as the id column's int, but it is None until the first save.
        super().save(*args, **kwargs)  # type: ignore[unreachable]


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", "Choose the columns"
    VALIDATING = "validating", "Checking the rows"
    VALIDATED = "validated", "Checked"
    IMPORTING = "importing", "Importing"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class ContactImport(models.Model):
    """A CSV file of contacts on its way in: uploaded, its columns mapped, every row checked
    (a task), then, once someone accepts the valid rows, imported (a task). The file itself
    is a ContactImportFile, kept only until the import ends or is cancelled."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    file_name = models.CharField(max_length=255)
    file_size = models.PositiveBigIntegerField(default=0)
    delimiter = models.CharField(max_length=1, default=",")
    headers = models.JSONField(default=list)
    # One target per column, in column order ("" ignores it): see contacts.import_rows.
    mapping = models.JSONField(default=list)
    status = models.CharField(max_length=12, choices=ImportStatus.choices, default="uploaded")
    total_rows = models.PositiveIntegerField(default=0)  # data rows that are not blank
    valid_rows = models.PositiveIntegerField(default=0)
    error_rows = models.PositiveIntegerField(default=0)
    # The current phase's rows done so far: the progress bar, and where the next turn of the
    # task resumes (saved with the work of each chunk, so a crash never repeats a row).
    processed_rows = models.PositiveIntegerField(default=0)
    # Where in the file the next turn reads on (csvfile.Place: characters, row number).
    read_offset = models.PositiveBigIntegerField(default=0)
    read_row = models.PositiveIntegerField(default=0)
    imported_rows = models.PositiveIntegerField(default=0)
    created_rows = models.PositiveIntegerField(default=0)  # imported rows that were new people
    skipped_rows = models.PositiveIntegerField(default=0)  # valid when checked, not at import
    # [[row number, problem], ...]: the first ones found when checking, and when importing.
    errors = models.JSONField(default=list)
    import_errors = models.JSONField(default=list)
    # One bit per data row, set for rows found invalid (those are never imported).
    invalid = models.BinaryField(blank=True, default=b"")
    # What checking carries from one turn to the next (the phones seen so far), compressed.
    state = models.BinaryField(blank=True, default=b"")
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True)
    consent_confirmed = models.BooleanField(default=False)
    # The last turn's time: a run whose worker died is restarted from processed_rows.
    heartbeat_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)
    message = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return self.file_name

    @property
    def running(self) -> bool:
        return self.status in (ImportStatus.VALIDATING, ImportStatus.IMPORTING)


class ContactImportFile(models.Model):
    """An import's file as uploaded (UTF-8), zlib-compressed, in the database, which every
    web and worker process reaches wherever it runs. A row of its own: SQLite rewrites a
    whole row on each update, and the import saves its progress with every chunk."""

    contact_import = models.OneToOneField(
        ContactImport, on_delete=models.CASCADE, primary_key=True, related_name="file"
    )
    content = models.BinaryField()
