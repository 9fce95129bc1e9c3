from django.apps import AppConfig


class AdaptationConfig(AppConfig):
    name = "adaptation"
    verbose_name = "Adaptation"

    def ready(self) -> None:
        from adaptation import signals  # noqa: F401  (connects the broadcast on change)
        from adaptation.api_errors import api_errors_register

        api_errors_register()
