from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "openline.campaigns"
    verbose_name = "Broadcasts"

    def ready(self) -> None:
        from openline.campaigns.answers import answer_read
        from openline.campaigns.reminders import PURPOSE
        from openline.messaging.answers import answer_reader_set

        # Replies to reminders are read in context (messaging sits below campaigns).
        answer_reader_set(PURPOSE, answer_read)
