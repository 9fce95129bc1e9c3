"""Attune's admin site: Django's, with an operations home that gathers the state of every app."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse


class AttuneAdminSite(admin.AdminSite):
    site_header = "Attune operations"
    site_title = "Attune operations"
    index_title = "Is it working, and what is it doing?"
    index_template = "admin/attune_index.html"

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> TemplateResponse:
        # Imported here: the dashboard reads every app's models, which the site must not need to load.
        from fer_site.dashboard import dashboard_context

        return super().index(request, extra_context={**dashboard_context(), **(extra_context or {})})
