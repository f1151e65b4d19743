from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from core.errors import LimitExceeded
from generation.forms import usable_models
from generation.models import ModelVersion

from .charts import loss_chart
from .models import TrainingRun
from .submit import CONFIG_FIELDS, retry_run, submit_run
from .validation import validate_training


class TrainingRunForm(forms.ModelForm):
    """Adding a run checks it the way the API and the album's train form do."""

    class Meta:
        model = TrainingRun
        fields = ["name", "album", "base_model", *CONFIG_FIELDS]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        for name in ("base_model", "seed"):  # None: the default base, a random seed
            if name in self.fields:
                self.fields[name].required = False
        if "base_model" in self.fields and user is not None:  # those the user may use
            self.fields["base_model"].queryset = usable_models(user, ModelVersion.Kind.BASE)

    def clean(self):
        data = super().clean()
        if self.instance.pk or self.errors:  # a run's settings never change
            return data
        try:
            self.cleaned_training = validate_training(dict(data), user=self.user)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        return data


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    form = TrainingRunForm
    list_display = ["id", "name", "owner", "status", "progress_bar", "album", "lora",
                    "created_at"]
    list_filter = ["status", ("owner", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "trigger_word"]
    list_select_related = ["owner", "album", "lora"]
    actions = ["cancel_runs", "retry_runs"]
    date_hierarchy = "created_at"
    progress_fields = ["status", "progress", "current_step", "loss_chart", "error", "log",
                       "attempts", "worker", "created_at", "started_at", "finished_at",
                       "heartbeat_at", "lora", "kohya_file", "validation_album", "owner"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "album", "base_model", *CONFIG_FIELDS]
        return ["name", "album", "base_model", *CONFIG_FIELDS, *self.progress_fields]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        class WithUser(form):
            def __init__(self, *args, **inner):
                super().__init__(*args, user=request.user, **inner)

        return WithUser

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)

    def save_model(self, request, obj, form, change):
        # Runs are only added here (a run's settings never change): through submit_run,
        # which queues it once the transaction commits.
        if change:
            return
        run = submit_run(request.user, form.cleaned_training)
        obj.pk = run.pk
        form.instance = run

    @admin.display(description="progress")
    def progress_bar(self, run):
        return format_html('<progress value="{}" max="1"></progress> {}/{}',
                           f"{run.progress:.3f}", run.current_step, run.steps)

    @admin.display(description="loss")
    def loss_chart(self, run):
        return loss_chart(run.losses)

    @admin.display(description="log tail")
    def log(self, run):
        return format_html("<pre>{}</pre>", run.log_tail)

    @admin.action(description="Cancel the selected runs", permissions=["view"])
    def cancel_runs(self, request, queryset):
        cancelled = sum(run.cancel() for run in queryset)
        self.message_user(request, f"Cancelled {cancelled} runs.")

    @admin.action(description="Retry the selected runs (they resume from their checkpoint)",
                  permissions=["add"])
    def retry_runs(self, request, queryset):
        retried = 0
        for run in queryset:
            try:
                retry_run(run, by=request.user)
                retried += 1
            except ValidationError as exc:
                self.message_user(request, f"{run}: {' '.join(exc.messages)}", messages.ERROR)
            except LimitExceeded as exc:
                self.message_user(request, f"{run}: {exc}", messages.ERROR)
        self.message_user(request, f"Queued {retried} runs again.")
