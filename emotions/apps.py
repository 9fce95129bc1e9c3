from django.apps import AppConfig


class EmotionsConfig(AppConfig):
    verbose_name = "Emotion engine"
    name = "emotions"

    def ready(self) -> None:
        from emotions.api_errors import api_errors_register

        api_errors_register()
