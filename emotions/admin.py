from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from emotions.models import ModelVersion
from emotions.services import model_version_activate


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "architecture", "accuracy", "is_active", "created_at")
    list_filter = ("architecture", "is_active")
    search_fields = ("name", "architecture")
    readonly_fields = ("sha256", "is_active", "created_at", "activated_at")
    actions = ("activate",)

    @admin.display(description="Accuracy")
    def accuracy(self, obj: ModelVersion) -> str:
        accuracy = obj.accuracy
        return f"{accuracy:.1%}" if isinstance(accuracy, int | float) else "—"

    @admin.action(description="Activate the selected version (serve it on the site)")
    def activate(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.ERROR)
            return
        version = queryset.get()
        try:
            model_version_activate(version=version)
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            return
        self.message_user(
            request,
            f"{version.name} is now active; running processes switch to it within a few seconds.",
            messages.SUCCESS,
        )
