from django.apps import AppConfig


class EmotionsConfig(AppConfig):
    verbose_name = "Emotion engine"
    name = "emotions"
