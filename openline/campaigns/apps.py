from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "openline.campaigns"
    verbose_name = "Broadcasts"
