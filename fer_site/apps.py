from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class FerSiteConfig(AppConfig):
    name = "fer_site"
    verbose_name = "Site and REST API"


class AttuneAdminConfig(admin_apps.AdminConfig):
    """Django's admin serving Attune's site; listed in INSTALLED_APPS in place of django.contrib.admin."""

    default = False  # fer_site's own config stays the app's default
    default_site = "fer_site.admin_site.AttuneAdminSite"
