from __future__ import annotations

import mimetypes

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from emotions.labels import EMOTIONS
from fer_site.charts import line_chart_svg
from training.config import PRESETS
from training.forms import TrainingRunStartForm
from training.models import TrainingRun
from training.selectors import training_data_roots
from training.services import training_run_cancel, training_run_create, training_runs_recover

# Only these files of a run folder are ever served, and only to staff.
ARTIFACT_FILES = {"curves.png", "confusion_matrix.png", "reliability.png", "evaluation.json", "MODEL_CARD.md"}
CURVE_COLOURS = {"accuracy": "#2e6fb7", "val_accuracy": "#e67e22", "loss": "#2e6fb7", "val_loss": "#e67e22"}


def curves_svg(history: dict) -> str:
    """Return accuracy and loss curves (training against validation) as inline SVG."""
    epochs = len(history.get("accuracy") or [])
    if not epochs:
        return ""
    labels = [str(i) for i in range(1, epochs + 1)]
    accuracy = line_chart_svg(
        labels=labels,
        series={k: history.get(k, []) for k in ("accuracy", "val_accuracy")},
        title="Accuracy per epoch",
        colours=CURVE_COLOURS,
        y_max=1.0,
        legend_totals=False,
        height=220,
    )
    peak_loss = max(max(history.get(k) or [0]) for k in ("loss", "val_loss"))
    loss = line_chart_svg(
        labels=labels,
        series={k: history.get(k, []) for k in ("loss", "val_loss")},
        title="Loss per epoch",
        colours=CURVE_COLOURS,
        y_max=round(peak_loss + 0.05, 1),
        legend_totals=False,
        height=220,
    )
    return accuracy + loss


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("id", "label", "status_badge", "progress_bar", "epochs", "best_accuracy", "created_at")
    list_filter = ("status", "architecture")
    search_fields = ("name", "architecture")
    actions = ("cancel_runs", "compare_runs")
    change_list_template = "training/admin/trainingrun_change_list.html"
    change_form_template = "training/admin/trainingrun_change_form.html"
    readonly_fields = (
        "name",
        "architecture",
        "dataset_path",
        "config",
        "status",
        "epoch",
        "total_epochs",
        "progress",
        "best_accuracy",
        "error",
        "attempts",
        "worker",
        "heartbeat_at",
        "started_at",
        "finished_at",
        "model_version",
        "run_dir",
    )
    fields = readonly_fields

    @admin.display(description="Run")
    def label(self, run: TrainingRun) -> str:
        return run.name or run.architecture

    @admin.display(description="Status", ordering="status")
    def status_badge(self, run: TrainingRun) -> str:
        return format_html('<span class="run-status run-{}">{}</span>', run.status, run.get_status_display())

    @admin.display(description="Progress")
    def progress_bar(self, run: TrainingRun) -> str:
        return format_html(
            '<progress max="100" value="{}" title="{}%"></progress> {}%',
            int(run.progress * 100),
            int(run.progress * 100),
            int(run.progress * 100),
        )

    @admin.display(description="Epochs")
    def epochs(self, run: TrainingRun) -> str:
        return f"{run.epoch}/{run.total_epochs}"

    @admin.display(description="Best val. accuracy")
    def best_accuracy(self, run: TrainingRun) -> str:
        value = run.metrics.get("accuracy") if run.metrics else run.best_val_accuracy
        return f"{value:.1%}" if value is not None else "—"

    def get_urls(self):
        urls = [
            path(
                "compare/", self.admin_site.admin_view(self.compare_view), name="training_trainingrun_compare"
            ),
            path(
                "<int:run_id>/artifact/<str:name>",
                self.admin_site.admin_view(self.artifact_view),
                name="training_trainingrun_artifact",
            ),
        ]
        return urls + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context=None):
        training_runs_recover()  # an operator looking at runs never sees one stuck in running
        extra = {"refresh": TrainingRun.objects.unfinished().exists(), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def add_view(self, request: HttpRequest, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise Http404
        preset = PRESETS.get(request.GET.get("preset", ""))
        form = TrainingRunStartForm(request.POST or None, initial=dict(preset.values) if preset else None)
        if request.method == "POST" and form.is_valid():
            try:
                run = training_run_create(
                    architecture=form.cleaned_data["architecture"],
                    dataset_path=form.cleaned_data["dataset_path"],
                    config=form.training_config(),
                    name=form.cleaned_data["name"],
                )
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, f"{run} queued; a worker on the training queue will pick it up.")
                return HttpResponseRedirect(reverse("admin:training_trainingrun_change", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "Start a training run",
            "form": form,
            "presets": PRESETS,
            "preset": preset,
            "data_roots": training_data_roots(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "training/admin/start_run.html", context)

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        run = get_object_or_404(TrainingRun, pk=object_id)
        if request.method == "POST" and "cancel" in request.POST:
            training_run_cancel(run=run)
            self.message_user(request, f"Cancellation of {run} requested.")
            return HttpResponseRedirect(request.path)
        extra = {
            "run": run,
            "refresh": not run.is_finished,
            "curves_svg": mark_safe(curves_svg(run.history)),  # built from numbers only
            "per_class": (run.metrics or {}).get("per_class", {}),
            "confusion": zip(EMOTIONS, (run.metrics or {}).get("confusion_matrix", []), strict=False),
            "labels": EMOTIONS,
            "artifacts": {name: name in (run.artifacts or {}).values() for name in ARTIFACT_FILES},
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def artifact_view(self, request: HttpRequest, run_id: int, name: str) -> HttpResponse:
        run = get_object_or_404(TrainingRun, pk=run_id)
        if name not in ARTIFACT_FILES or not (run.folder / name).is_file():
            raise Http404("no such artifact")
        content_type = mimetypes.guess_type(name)[0] or "text/plain"
        return FileResponse(open(run.folder / name, "rb"), content_type=content_type)

    def compare_view(self, request: HttpRequest) -> HttpResponse:
        ids = [int(i) for i in request.GET.get("ids", "").split(",") if i.isdigit()]
        runs = list(TrainingRun.objects.filter(pk__in=ids).order_by("pk"))
        series = {f"#{r.pk} {r.name or r.architecture}": r.history.get("val_accuracy", []) for r in runs}
        longest = max((len(v) for v in series.values()), default=0)
        palette = ("#2e6fb7", "#e67e22", "#27ae60", "#8e44ad", "#c0392b", "#7f8c8d")
        chart = (
            line_chart_svg(
                labels=[str(i) for i in range(1, longest + 1)],
                series=series,
                title="Validation accuracy per epoch",
                colours=dict(zip(series, palette, strict=False)),
                y_max=1.0,
                legend_totals=False,
            )
            if longest
            else ""
        )
        rows = [
            ("Architecture", [r.architecture for r in runs]),
            ("Status", [r.get_status_display() for r in runs]),
            ("Epochs", [f"{r.epoch}/{r.total_epochs}" for r in runs]),
            ("Val. accuracy", [self.best_accuracy(r) for r in runs]),
            (
                "Macro F1",
                [
                    f"{r.metrics['macro_f1']:.3f}" if r.metrics.get("macro_f1") is not None else "—"
                    for r in runs
                ],
            ),
            *[
                (
                    f"F1 {label}",
                    [
                        f"{r.metrics['per_class'][label]['f1']:.3f}" if r.metrics.get("per_class") else "—"
                        for r in runs
                    ],
                )
                for label in EMOTIONS
            ],
            *[
                (key, [str(r.config.get(key, "—")) for r in runs])
                for key in sorted({k for r in runs for k in r.config})
            ],
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Compare training runs",
            "runs": runs,
            "rows": rows,
            "chart": mark_safe(chart),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "training/admin/compare.html", context)

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[TrainingRun]) -> None:
        for run in queryset:
            training_run_cancel(run=run)
        self.message_user(request, f"Cancellation requested for {queryset.count()} run(s).", messages.SUCCESS)

    @admin.action(description="Compare the selected runs side by side")
    def compare_runs(self, request: HttpRequest, queryset: QuerySet[TrainingRun]) -> HttpResponse:
        ids = ",".join(str(pk) for pk in queryset.values_list("pk", flat=True))
        return HttpResponseRedirect(f"{reverse('admin:training_trainingrun_compare')}?ids={ids}")
