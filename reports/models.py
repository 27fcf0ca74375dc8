from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class InboundMessage(models.Model):
    """One delivery of raw mail exactly as received; stored before anything parses it."""

    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        PROCESSED = "processed", _("processed")
        FAILED = "failed", _("failed")
        IGNORED = "ignored", _("ignored")

    # Processing never touches these again.
    DONE_STATES = (State.PROCESSED, State.IGNORED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    received_at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=64, help_text=_("webhook:<provider>, cli, smtp, imap, api"))
    raw = models.FileField(upload_to="inbound/", max_length=255)
    raw_size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, unique=True)
    provider_event_id = models.CharField(max_length=255, blank=True, default="")
    envelope_sender = models.CharField(max_length=320, blank=True, default="")
    envelope_recipient = models.CharField(max_length=320, blank=True, default="")
    # What was given was not MIME and `raw` is its conversion, which carries the original bytes
    # as an attachment (reports.outlook).
    converted_from = models.CharField(
        max_length=32, blank=True, default="", help_text=_("outlook-msg when raw is a converted .msg file")
    )
    # Filled by processing (not at storage time: nothing is parsed before the bytes are safe).
    message_id = models.CharField(max_length=998, blank=True, default="", db_index=True)
    content_sha256 = models.CharField(max_length=64, blank=True, default="", db_index=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="redeliveries"
    )
    message_id_collision = models.BooleanField(
        default=False, help_text=_("Another message with this Message-ID but different content exists.")
    )
    # Set while a drain task works on this pending message, so two workers never parse it twice;
    # a claim that outlives a crashed worker simply expires.
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "provider_event_id"],
                condition=~models.Q(provider_event_id=""),
                name="inbound_unique_provider_event",
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.source} {self.state}"


class InboundWebhook(models.Model):
    """One authenticated provider webhook request, stored as received before it is answered.

    The drain unpacks it with django-anymail into the InboundMessages it carries (reports.intake),
    then clears the body; one that cannot be unpacked keeps its body and its error, so nothing an
    authentic provider posted is lost.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        UNPACKED = "unpacked", _("unpacked")
        IGNORED = "ignored", _("ignored (carried no mail)")
        FAILED = "failed", _("failed")

    received_at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=64, help_text=_("webhook:<provider>"))
    route = models.CharField(max_length=100, help_text=_("The name of django-anymail's URL it was posted to."))
    # The WSGI environ the view needs again: CONTENT_TYPE, PATH_INFO and the HTTP_* headers, never
    # credentials (Authorization, Cookie).
    meta = models.JSONField(default=dict)
    body = models.BinaryField(blank=True, default=b"")
    # A large body is kept in storage instead (reports.intake.INLINE_BODY_BYTES).
    body_file = models.CharField(max_length=255, blank=True, default="")
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    # The InboundMessages it carried: new ones, or the ones a redelivery found already stored.
    inbound_ids = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = _("inbound webhooks")
        constraints = [
            # A provider's retry of the same request is acknowledged without storing it again.
            models.UniqueConstraint(fields=["source", "sha256"], name="inbound_webhook_unique_body")
        ]
        indexes = [
            models.Index(fields=["id"], condition=models.Q(state="pending"), name="inbound_webhook_pending"),
            models.Index(fields=["state", "processed_at"], name="inbound_webhook_state"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.source} {self.state}"


class ProcessingWakeup(models.Model):
    """A single row: whether a drain task is queued and has not started yet.

    Intake flips it on and enqueues a drain only when it was off, so a burst of a thousand mails
    queues a handful of tasks, not a thousand (reports.tasks.process_pending).
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    pending = models.BooleanField(default=False)

    def __str__(self) -> str:
        return "drain queued" if self.pending else "idle"


class Reporter(models.Model):
    """A sender address; the identity we answer, never taken from Reply-To."""

    email = models.CharField(max_length=320, unique=True)
    display_name = models.CharField(max_length=200, blank=True, default="")
    language = models.CharField(max_length=8, blank=True, default="")
    report_count = models.PositiveIntegerField(default=0)
    trusted = models.BooleanField(default=False, help_text=_("Trusted flagger: reports get priority."))
    muted = models.BooleanField(default=False, help_text=_("Abuses the desk: reports are kept, never answered."))
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    def __str__(self) -> str:
        return self.email


class Entity(models.Model):
    """A reported object on the platform, one row per canonical URL."""

    class Kind(models.TextChoices):
        CHANNEL_OR_GROUP = "channel_or_group", _("channel or group")
        BOT = "bot", _("bot")
        USER = "user", _("user")
        STICKER_SET = "sticker_set", _("sticker set")
        EMOJI_SET = "emoji_set", _("emoji set")
        INVITE = "invite", _("invite link")
        PRIVATE_CHAT = "private_chat", _("private chat")
        ACCOUNT = "account", _("account (kind unknown)")

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        BLOCKED = "blocked", _("blocked")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    url = models.CharField(max_length=300, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    lookalike = models.BooleanField(default=False, help_text=_("Seen only in a look-alike or mixed-script spelling."))
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    report_count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "entities"

    def __str__(self) -> str:
        return self.url


class Case(models.Model):
    """The unit of moderators' work: reports about a set of entities."""

    class Status(models.TextChoices):
        NEW = "new", _("new")
        OPEN = "open", _("open")
        WAITING = "waiting", _("waiting")
        ACTIONED = "actioned", _("actioned")
        DECLINED = "declined", _("declined")

    OPEN_STATUSES = (Status.NEW, Status.OPEN, Status.WAITING)

    class Priority(models.IntegerChoices):
        LOW = 0, _("low")
        NORMAL = 1, _("normal")
        HIGH = 2, _("high")
        URGENT = 3, _("urgent")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    reference = models.CharField(max_length=20, unique=True, blank=True, null=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW, db_index=True)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    category = models.CharField(max_length=32, blank=True, default="")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="assigned_cases"
    )
    entities = models.ManyToManyField(Entity, related_name="cases", blank=True)
    parse_error = models.CharField(max_length=500, blank=True, default="")
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_cases"
    )
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField()
    last_report_at = models.DateTimeField(db_index=True)
    report_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-last_report_at", "-id"]

    def __str__(self) -> str:
        return self.reference or f"case {self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class Report(models.Model):
    """What one inbound message says, threaded into a case (automatic mail has none)."""

    class Kind(models.TextChoices):
        REPORT = "report", _("report")
        FOLLOW_UP = "follow_up", _("follow-up")
        AUTOMATIC = "automatic", _("automatic")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    inbound = models.OneToOneField(InboundMessage, on_delete=models.PROTECT, related_name="report")
    reporter = models.ForeignKey(Reporter, on_delete=models.PROTECT, related_name="reports")
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.PROTECT, related_name="reports")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.REPORT)
    subject = models.CharField(max_length=998, blank=True, default="")
    text = models.TextField(blank=True, default="")
    language = models.CharField(max_length=8, blank=True, default="")
    message_id = models.CharField(max_length=998, blank=True, default="", db_index=True)
    in_reply_to = models.CharField(max_length=998, blank=True, default="")
    references = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(db_index=True)
    entities = models.ManyToManyField(Entity, through="ReportEntity", related_name="reports", blank=True)
    automatic_reason = models.CharField(max_length=200, blank=True, default="")
    auth_results = models.JSONField(default=dict, blank=True)
    # A receiver the desk trusts reported DMARC pass for the From address (reports/authn.py).
    from_verified = models.BooleanField(default=False)
    # Why this report is quarantined (parser limits hit), whichever case it joined: it is never
    # acknowledged automatically (SECURITY section 3).
    parse_error = models.CharField(max_length=500, blank=True, default="")
    # Kept for the moderator to see, never used: replies go to the reporter (SECURITY T4).
    reply_to = models.CharField(max_length=320, blank=True, default="")
    arf = models.JSONField(null=True, blank=True)
    # Normalised text plus attachment hashes (reports.threader.body_fingerprint); "" when too short
    # to mean anything. Rotating senders with the same body join one case (SECURITY T9).
    body_sha256 = models.CharField(max_length=64, blank=True, default="", db_index=True)
    # Threading notes for the moderator ("references another reporter's mail", "token not valid").
    notes = models.JSONField(default=list, blank=True)
    defects = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["received_at", "id"]
        indexes = [
            # A case's timeline in order, without sorting a storm's ten thousand reports; with
            # the language last, a page of cases gets its languages from the index alone.
            models.Index(fields=["case", "received_at", "id", "language"], name="report_case_timeline"),
            # The queue's language filter, and its list of languages as a loose index scan.
            models.Index(fields=["language", "case"], name="report_language_case"),
        ]

    def __str__(self) -> str:
        return f"report {self.pk} ({self.kind})"

    @property
    def auth_summary(self) -> str:
        """The topmost Authentication-Results verdicts, for the moderator's eyes."""
        results = dict(self.auth_results or {})
        receiver = results.pop("authserv-id", "")
        if not receiver:
            return "no Authentication-Results field"
        return f"{receiver}: " + (", ".join(f"{method}={verdict}" for method, verdict in results.items()) or "-")


class ReportEntity(models.Model):
    """An entity named by a report, with how it was spelled there."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE)
    entity = models.ForeignKey(Entity, on_delete=models.PROTECT)
    seen_as = models.CharField(max_length=300)
    source = models.CharField(max_length=16)
    defanged = models.BooleanField(default=False)
    lookalike = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["report", "entity"], name="report_entity_unique")]

    def __str__(self) -> str:
        return f"{self.entity} in report {self.report_id}"


class Attachment(models.Model):
    """A file of a report; never executed, never extracted, served only as a download."""

    class PdqState(models.TextChoices):
        """Whether the file has a perceptual hash, and if not, why (reports/mediahash.py)."""

        PENDING = "pending", _("not hashed yet")
        HASHED = "hashed", _("hashed")
        NOT_IMAGE = "not_image", _("not a raster image")
        VIDEO = "video", _("video, matched exactly only")
        UNDECODABLE = "undecodable", _("image could not be decoded")
        OVERSIZED = "oversized", _("image over the pixel cap")
        TOO_SLOW = "too_slow", _("image over the time budget")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="attachments")
    filename = models.CharField(max_length=255)
    declared_type = models.CharField(max_length=255, blank=True, default="")
    content_type = models.CharField(max_length=255, help_text=_("Sniffed from the bytes."))
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    file = models.FileField(upload_to="attachments/", max_length=255)
    is_inline = models.BooleanField(default=False)
    # Known-content hashes, filled while the mail is processed; "" and pending for files stored
    # before hashing existed, until `manage.py hash_attachments` runs.
    md5 = models.CharField(max_length=32, blank=True, default="", db_index=True)
    pdq = models.CharField(max_length=64, blank=True, default="", help_text=_("PDQ hash, 64 hex digits."))
    pdq_quality = models.PositiveSmallIntegerField(null=True, blank=True)
    pdq_state = models.CharField(max_length=12, choices=PdqState.choices, default=PdqState.PENDING, db_index=True)
    pdq_note = models.CharField(max_length=300, blank=True, default="", help_text=_("Why there is no PDQ hash."))

    def __str__(self) -> str:
        return self.filename


class OutboundMessageId(models.Model):
    """A Message-ID of mail we sent, registered by moderation so threading stays inside reports."""

    message_id = models.CharField(max_length=998, unique=True)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="outbound_ids")
    reporter = models.ForeignKey(Reporter, on_delete=models.PROTECT, related_name="outbound_ids")
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.message_id
