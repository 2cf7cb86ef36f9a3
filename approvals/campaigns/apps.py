from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    """Recertification campaigns: part of approvals (every decision about access), kept as its own
    Django app (label ``campaigns``) so its models and migrations stand apart."""

    name = "approvals.campaigns"
    label = "campaigns"
    verbose_name = "Recertification campaigns"
    default_auto_field = "django.db.models.BigAutoField"
