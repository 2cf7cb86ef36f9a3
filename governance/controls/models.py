"""What the organisation adds to the catalog in the portal (its own frameworks, items and
mappings, its own evidence thresholds) and the dashboard's daily metric snapshots. The public
frameworks and their mappings are a versioned data file (``data/``), not rows."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Framework(models.Model):
    """An organisation's own framework (an internal standard, a regulator's checklist)."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=150)
    publisher = models.CharField(max_length=150, blank=True)
    version = models.CharField(max_length=40, blank=True)
    source_url = models.URLField(max_length=500, help_text="Where the framework's text is published.")
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class FrameworkItem(models.Model):
    framework = models.ForeignKey(Framework, on_delete=models.CASCADE, related_name="items")
    code = models.CharField(max_length=40, help_text="The item's id in the framework, e.g. SEC-04.")
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["framework", "order", "code"]
        constraints = [models.UniqueConstraint(fields=["framework", "code"], name="framework_item_code_unique")]

    def __str__(self) -> str:
        return f"{self.code} {self.title}"


class ControlMapping(models.Model):
    """The organisation's own mapping of a control to a framework item: of its own frameworks or
    of a public one (``framework_slug`` names either; the services check it exists)."""

    control_id = models.CharField(max_length=80)
    framework_slug = models.CharField(max_length=60)
    item_code = models.CharField(max_length=40)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["framework_slug", "item_code", "control_id"]
        constraints = [
            models.UniqueConstraint(fields=["control_id", "framework_slug", "item_code"], name="control_mapping_unique")
        ]

    def __str__(self) -> str:
        return f"{self.control_id} → {self.framework_slug}:{self.item_code}"


class EvidenceThreshold(models.Model):
    """The organisation's threshold for one evidence figure, replacing the figure's default."""

    figure_key = models.CharField(max_length=120, unique=True)
    met = models.FloatField()
    partly = models.FloatField(null=True, blank=True)
    reason = models.TextField(blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["figure_key"]

    def __str__(self) -> str:
        return self.figure_key


class MetricSnapshot(models.Model):
    """One day's value of one dashboard metric: trends exist from an installation's first day."""

    key = models.CharField(max_length=80)
    day = models.DateField()
    value = models.FloatField()
    taken_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["key", "day"]
        constraints = [models.UniqueConstraint(fields=["key", "day"], name="metric_snapshot_key_day")]

    def __str__(self) -> str:
        return f"{self.key} {self.day}: {self.value}"


class StoredFigure(models.Model):
    """The latest value of one dashboard figure too costly to compute on every view (registered
    with ``governance.dashboard.register_figure``), measured by the hourly task."""

    key = models.CharField(max_length=80, unique=True)
    value = models.JSONField()
    taken_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key} at {self.taken_at:%Y-%m-%d %H:%M}"
