from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from emotions.models import ModelActivation, ModelVersion
from emotions.selectors import (
    model_activations_recent,
    model_comparison,
    model_default_figures,
    model_figures,
    model_served_figures,
    model_served_since,
)
from emotions.services import (
    model_version_activate,
    model_version_restore_default,
    model_version_serve_problem,
)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "architecture", "accuracy", "macro_f1", "litert", "is_active", "created_at")
    list_filter = ("architecture", "is_active")
    search_fields = ("name", "architecture")
    # Written by registration (which compiles the LiteRT file and checks it), never by hand.
    readonly_fields = (
        "sha256",
        "litert_path",
        "litert_sha256",
        "litert_max_abs_diff",
        "litert_error",
        "is_active",
        "created_at",
        "activated_at",
        "activation_history",
    )
    actions = ("activate",)
    change_list_template = "admin/emotions/modelversion/change_list.html"
    change_form_template = "admin/emotions/modelversion/change_form.html"

    def get_urls(self):
        urls = [
            path(
                "<int:pk>/activate/",
                self.admin_site.admin_view(self.activate_view),
                name="emotions_modelversion_activate",
            ),
            path(
                "restore-default/",
                self.admin_site.admin_view(self.restore_default_view),
                name="emotions_modelversion_restore_default",
            ),
        ]
        return urls + super().get_urls()

    @admin.display(description="Val accuracy")
    def accuracy(self, obj: ModelVersion) -> str:
        accuracy = obj.accuracy
        return f"{accuracy:.1%}" if isinstance(accuracy, int | float) else "—"

    @admin.display(description="Macro F1")
    def macro_f1(self, obj: ModelVersion) -> str:
        value = (obj.metrics or {}).get("macro_f1")
        return f"{value:.3f}" if isinstance(value, int | float) else "—"

    @admin.display(description="LiteRT")
    def litert(self, obj: ModelVersion) -> str:
        problem = obj.litert_problem()
        return f"no: {problem}" if problem else f"yes (±{obj.litert_max_abs_diff:.0e})"

    @admin.display(description="Activations")
    def activation_history(self, obj: ModelVersion) -> str:
        if obj.pk is None:
            return "—"
        records = ModelActivation.objects.filter(to_version=obj) | ModelActivation.objects.filter(
            from_version=obj
        )
        records = records.select_related("user")[:20]
        if not records:
            return "Never served."
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} · {} → {} · by {}</li>",
                (
                    (
                        f"{r.created_at:%Y-%m-%d %H:%M}",
                        r.from_name,
                        r.to_name,
                        r.user or "the API or a command",
                    )
                    for r in records
                ),
            ),
        )

    @admin.action(description="Activate the selected version (serve it on the site)…")
    def activate(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.ERROR)
            return None
        # Activation always goes through the confirmation page, which compares it with the served model.
        return HttpResponseRedirect(reverse("admin:emotions_modelversion_activate", args=[queryset.get().pk]))

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        served = model_served_figures()
        context = {
            "served": served,
            "served_since": model_served_since(),
            "default_figures": served if served.is_default else model_default_figures(),
            "activations": model_activations_recent(limit=5),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)

    def activate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        version = get_object_or_404(ModelVersion, pk=pk)
        if request.method == "POST" and "confirm" in request.POST:
            try:
                model_version_activate(version=version, user=request.user)
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
                return HttpResponseRedirect(reverse("admin:emotions_modelversion_activate", args=[pk]))
            self.message_user(
                request,
                f"{version.name} is now active; running processes switch to it within a few seconds.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:emotions_modelversion_changelist"))
        return self._confirm_page(
            request,
            new=model_figures(version=version),
            problem=model_version_serve_problem(version=version),
            title=f"Serve {version.name}?",
        )

    def restore_default_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        if request.method == "POST" and "confirm" in request.POST:
            if not Path(settings.EMOTIONS_DEFAULT_MODEL).is_file():
                self.message_user(request, "The shipped default model is missing.", messages.ERROR)
                return HttpResponseRedirect(reverse("admin:emotions_modelversion_restore_default"))
            model_version_restore_default(user=request.user)
            self.message_user(
                request,
                "The shipped default model is served again; running processes switch within a few seconds.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:emotions_modelversion_changelist"))
        shipped = Path(settings.EMOTIONS_DEFAULT_MODEL)
        problem = None if shipped.is_file() else f"The shipped default model {shipped} is missing."
        return self._confirm_page(
            request, new=model_default_figures(), problem=problem, title="Serve the shipped default model?"
        )

    def _confirm_page(
        self, request: HttpRequest, *, new: Any, problem: str | None, title: str
    ) -> HttpResponse:
        current = model_served_figures()
        comparison = model_comparison(current=current, new=new)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "comparison": comparison,
            "problem": problem,
            "already_served": current.name == new.name and current.is_default == new.is_default,
        }
        return TemplateResponse(request, "admin/emotions/modelversion/activate_confirm.html", context)


@admin.register(ModelActivation)
class ModelActivationAdmin(admin.ModelAdmin):
    """The history of served models: written by activation, never by hand."""

    list_display = ("created_at", "from_name", "to_name", "user")
    list_filter = ("user",)
    search_fields = ("from_name", "to_name")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
