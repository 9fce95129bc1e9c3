from django.apps import AppConfig


class FerSiteConfig(AppConfig):
    name = "fer_site"
    verbose_name = "Site and REST API"
