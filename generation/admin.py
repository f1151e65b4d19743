from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core.errors import LimitExceeded

from .forms import usable_messages, usable_models
from .models import (
    Batch,
    Job,
    JobLora,
    ModelVersion,
    PromptSet,
    PromptSetItem,
    PromptSetLora,
    SiteSettings,
)
from .submit import remix_job
from .validation import MAX_LORAS, SCHEDULERS


class UsableModelFilter(admin.RelatedFieldListFilter):
    """The job list's model filter offers the models the user's role may use (usable_by), as
    the models' own list does: an editor is not shown the names of the admins' models."""

    def field_choices(self, field, request, model_admin):
        return [(model.pk, str(model))
                for model in ModelVersion.objects.usable_by_user(request.user).order_by("name")]


class JobLoraInline(admin.TabularInline):
    model = JobLora
    extra = 0
    readonly_fields = ["lora", "weight"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "thumbnails", "prompt_short", "owner", "status", "progress_bar",
                    "model", "queued_at", "worker"]
    list_filter = ["status", ("model", UsableModelFilter),
                   ("owner", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["prompt", "negative_prompt"]
    list_select_related = ["owner", "model"]
    readonly_fields = ["owner", "owner_role", "batch", "batch_position", "status", "progress",
                       "queued_at", "started_at", "finished_at", "heartbeat_at", "attempts",
                       "error", "error_type", "worker", "images", "remix_of", "result_images"]
    fields = ["prompt", "negative_prompt", "model", "width", "height", "steps",
              "guidance_scale", "seed", "scheduler", "num_images", *readonly_fields]
    inlines = [JobLoraInline]
    actions = ["cancel_jobs", "retry_jobs"]
    date_hierarchy = "queued_at"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("images")

    def has_add_permission(self, request):
        return False  # jobs come from the generate page, the API or batches

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="prompt")
    def prompt_short(self, job):
        return job.prompt[:60]

    @admin.display(description="progress")
    def progress_bar(self, job):
        return format_html('<progress value="{}" max="1"></progress>', f"{job.progress:.3f}")

    @admin.display(description="images")
    def thumbnails(self, job):
        return format_html_join(
            "", '<img src="{}" alt="" width="48" height="48" loading="lazy"> ',
            ((reverse("image_thumbnail", args=[image.pk]),) for image in job.images.all()),
        )

    @admin.display(description="results")
    def result_images(self, job):
        return self.thumbnails(job)

    @admin.action(description="Cancel the selected jobs", permissions=["view"])
    def cancel_jobs(self, request, queryset):
        cancelled = sum(job.cancel() for job in queryset.visible_to(request.user))
        self.message_user(request, f"Cancelled {cancelled} jobs.")

    @admin.action(description="Retry the selected jobs (same seed and parameters)",
                  permissions=["view"])
    def retry_jobs(self, request, queryset):
        for job in queryset.visible_to(request.user):
            try:
                remix_job(request.user, job)
            except Exception as exc:  # a limit or a model gone inactive: say so, go on
                self.message_user(request, f"Job {job.pk}: {exc}", messages.ERROR)


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ["id", "prompt_set", "theme", "owner", "status", "progress_bar",
                    "succeeded", "failed", "total", "created_at"]
    list_filter = ["status", "prompt_set"]
    readonly_fields = ["prompt_set", "theme", "owner", "status", "total", "succeeded",
                       "failed", "album", "created_at", "finished_at"]
    actions = ["cancel_batches"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="progress")
    def progress_bar(self, batch):
        return format_html('<progress value="{}" max="1"></progress> {}/{}',
                           f"{batch.progress:.3f}", batch.succeeded + batch.failed, batch.total)

    @admin.action(description="Cancel the selected batches", permissions=["change"])
    def cancel_batches(self, request, queryset):
        for batch in queryset:
            batch.cancel()
        self.message_user(request, f"Cancelled {queryset.count()} batches.")


class PromptSetItemInline(admin.TabularInline):
    model = PromptSetItem
    extra = 0
    fields = ["position", "values"]


class PromptSetLoraInline(admin.TabularInline):
    """Editors hold the through model's permissions (accounts/roles.py); each row is checked
    by PromptSetLora.clean, the rule of a job's LoRAs."""

    model = PromptSetLora
    extra = 0
    max_num = MAX_LORAS

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "lora":  # the LoRAs the user's role may use (usable_by)
            kwargs["queryset"] = usable_models(request.user, ModelVersion.Kind.LORA)
            kwargs["error_messages"] = usable_messages("lora", "LoRA")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class CsvImportForm(forms.Form):
    file = forms.FileField(help_text="A UTF-8 CSV with a header row naming the template's "
                                     "columns. It replaces the set's items.")


@admin.register(PromptSet)
class PromptSetAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "prompt_template", "width", "height", "item_count"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "prompt_template"]
    inlines = [PromptSetLoraInline, PromptSetItemInline]

    @admin.display(description="items")
    def item_count(self, prompt_set):
        return prompt_set.items.count()

    def get_urls(self):
        return [path("<int:pk>/import-csv/", self.admin_site.admin_view(self.import_csv),
                     name="generation_promptset_import_csv"), *super().get_urls()]

    def import_csv(self, request, pk):
        prompt_set = self.get_object(request, str(pk))
        if prompt_set is None or not self.has_change_permission(request, prompt_set):
            return redirect("admin:generation_promptset_changelist")
        form = CsvImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                count = prompt_set.import_csv(form.cleaned_data["file"].read())
            except ValidationError as exc:
                for messages_ in exc.message_dict.values():
                    form.add_error("file", messages_)
            else:
                self.message_user(request, f"Imported {count} items into {prompt_set}.")
                return redirect("admin:generation_promptset_change", pk)
        context = {**self.admin_site.each_context(request), "form": form, "set": prompt_set,
                   "opts": self.model._meta, "title": f"Import items into {prompt_set}"}
        return render(request, "admin/generation/promptset/import_csv.html", context)


class ModelVersionForm(forms.ModelForm):
    """Adding checks the model the way the API does (ModelVersion.from_source/from_upload)."""

    uploader = None  # the signed-in user (ModelVersionAdmin.get_form)

    class Meta:
        model = ModelVersion
        fields = ["name", "kind", "source", "file", "family", "trigger_words", "version",
                  "is_active", "usable_by", "vae", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["usable_by"].required = False  # left out: everyone, the default

    def clean(self):
        data = super().clean()
        data["usable_by"] = data.get("usable_by") or ModelVersion.UsableBy.EVERYONE
        if self.uploader is not None:
            try:  # who may set it to what: the model's rule, as in the API
                self.instance.check_usable_by_choice(self.uploader, data["usable_by"])
            except ValidationError as exc:
                self.add_error("usable_by", exc.message_dict["usable_by"])
        if self.instance.pk or self.errors:
            return data
        fields = {key: data.get(key) for key in
                  ["name", "family", "trigger_words", "version", "is_active", "usable_by",
                   "vae", "description"]}
        try:
            if data.get("file"):
                self.checked = ModelVersion.from_upload(data["file"], kind=data.get("kind"),
                                                        by=self.uploader,
                                                        **fields)
            else:
                self.checked = ModelVersion.from_source(kind=data.get("kind"),
                                                        source=data.get("source") or "",
                                                        **fields)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        except LimitExceeded as exc:
            self.add_error("file", str(exc))
        return data


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    form = ModelVersionForm
    list_display = ["name", "version", "kind", "family", "is_active", "is_default",
                    "usable_by", "short_hash", "size_bytes", "created_at"]
    list_filter = ["kind", "family", "is_active", "usable_by"]
    search_fields = ["name", "trigger_words", "sha256"]
    readonly_fields = ["sha256", "size_bytes", "is_default", "metrics", "created_by"]
    actions = ["activate", "deactivate", "make_default"]

    def get_readonly_fields(self, request, obj=None):
        """What registration checked is fixed once registered (ModelVersion.clean refuses
        a change too, as it does for the API)."""
        fixed = ModelVersion.FIXED_FIELDS if obj is not None else []
        return [*self.readonly_fields, *fixed]

    def get_queryset(self, request):
        """The models the user's role may use (usable_by): an editor never sees, nor
        changes, those of admins alone."""
        return super().get_queryset(request).usable_by_user(request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "vae":  # the active VAEs the user's role may use
            kwargs["queryset"] = usable_models(request.user, ModelVersion.Kind.VAE)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.uploader = request.user  # whose limits an uploaded file counts against
        return form

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        form.checked.created_by = request.user
        form.checked.register()
        form.instance = form.checked
        obj.pk = form.checked.pk

    @admin.action(description="Activate", permissions=["change"])
    def activate(self, request, queryset):
        queryset.update(is_active=True)

    @admin.action(description="Deactivate", permissions=["change"])
    def deactivate(self, request, queryset):
        queryset.filter(is_default=False).update(is_active=False)
        if queryset.filter(is_default=True).exists():
            self.message_user(request, "The default base model stays active.", messages.WARNING)

    @admin.action(description="Make the default base model", permissions=["change"])
    def make_default(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one base model.", messages.ERROR)
            return
        try:
            queryset.get().make_default()
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)


class SiteSettingsForm(forms.ModelForm):
    class Meta:
        model = SiteSettings
        fields = SiteSettings.field_names()
        widgets = {"default_scheduler": forms.Select(choices=[(s, s) for s in SCHEDULERS])}


@admin.register(SiteSettings)
class SiteSettingsAdmin(admin.ModelAdmin):
    """One row, changed in place (admins only: no other role holds its permissions).
    The list opens it; it is never added or deleted."""

    form = SiteSettingsForm
    readonly_fields = ["updated_at"]
    fieldsets = [
        ("Generation defaults", {
            "description": "What a generation request leaves out.",
            "fields": [name for name in SiteSettings.field_names()
                       if name.startswith("default_")],
        }),
        ("Limits", {
            "fields": [name for name in SiteSettings.field_names()
                       if not name.startswith(("default_", "nsfw_"))] + ["updated_at"],
        }),
        ("NSFW", {
            "description": "Automatic NSFW flags (IMAGINEER_NSFW_MODEL).",
            "fields": ["nsfw_threshold"],
        }),
    ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_object(self, request, object_id, from_field=None):
        return SiteSettings.load()

    def changelist_view(self, request, extra_context=None):
        return redirect("admin:generation_sitesettings_change", SiteSettings.load().pk)
