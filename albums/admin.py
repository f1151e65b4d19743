"""Curation in the admin, the operator console (editors and admins; viewers are not staff).

Images are added through albums.ingest (upload, import, generation), never here: the
admin changes them, files them into albums, captions and deletes them. Deleting, one or
in bulk, removes the files too (signals.py: post_delete fires for each row).
"""

import re

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.html import format_html

from .captioning import CaptioningUnavailable
from .forms import AlbumChoiceForm
from .models import Album, AlbumImage, CaptionRun, Image, Label, ScrapeRun
from .search import search
from .tasks import start_image_caption_run
from .templatetags.albums_tags import image_url, thumbnail_url

SHA256 = re.compile(r"[0-9a-f]{64}")


class AdminMedia:
    css = {"all": ["css/albums-admin.css"]}


def thumbnail_tag(image_id, css_class="admin-thumb"):
    if image_id is None:
        return "-"
    return format_html(
        '<a href="{}"><img class="{}" src="{}" alt="image {}" loading="lazy"></a>',
        image_url(image_id), css_class, thumbnail_url(image_id), image_id,
    )


class CaptionedFilter(admin.SimpleListFilter):
    title = "caption"
    parameter_name = "captioned"

    def lookups(self, request, model_admin):
        return [("yes", "Captioned"), ("no", "Not captioned")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.captioned(self.value() == "yes")
        return queryset


class NsfwScoreFilter(admin.SimpleListFilter):
    """The NSFW classifier's score (IMAGINEER_NSFW_MODEL) by range, or not scored."""

    title = "NSFW score"
    parameter_name = "nsfw_score"
    RANGES = {"lt0.2": (0.0, 0.2), "0.2-0.5": (0.2, 0.5), "0.5-0.8": (0.5, 0.8),
              "ge0.8": (0.8, None)}

    def lookups(self, request, model_admin):
        return [("none", "Not scored"), ("lt0.2", "Below 0.2"), ("0.2-0.5", "0.2 to 0.5"),
                ("0.5-0.8", "0.5 to 0.8"), ("ge0.8", "0.8 and above")]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(nsfw_score__isnull=True)
        if self.value() in self.RANGES:
            low, high = self.RANGES[self.value()]
            queryset = queryset.filter(nsfw_score__gte=low)
            return queryset if high is None else queryset.filter(nsfw_score__lt=high)
        return queryset


class LabelInline(admin.TabularInline):
    model = Label
    extra = 1
    fields = ["text", "kind", "source", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["thumb", "__str__", "source", "caption", "nsfw", "nsfw_score",
                    "created_by", "created_at"]
    list_display_links = ["__str__"]
    list_filter = ["source", "albums", "nsfw", NsfwScoreFilter, "nsfw_by_hand",
                   CaptionedFilter]
    search_fields = ["prompt"]  # shows the search box; get_search_results does the search
    list_per_page = 50
    date_hierarchy = "created_at"
    inlines = [LabelInline]
    # Not the file fields: their storage URLs are not served (files go through a view).
    fields = ["preview", "nsfw", "nsfw_score", "nsfw_by_hand", "prompt", "params", "source",
              "width", "height", "size_bytes", "format", "sha256", "created_by", "created_at"]
    readonly_fields = ["preview", "nsfw_score", "nsfw_by_hand", "source", "width", "height",
                       "size_bytes", "format", "sha256", "created_by", "created_at"]
    actions = ["add_to_album", "remove_from_album", "mark_nsfw", "unmark_nsfw",
               "caption_automatically"]
    Media = AdminMedia

    def get_queryset(self, request):
        return super().get_queryset(request).with_caption().select_related("created_by")

    def get_search_results(self, request, queryset, search_term):
        """The API's search (albums.search.search: the index, the last word a prefix, the
        newest matches), or an image by its sha256."""
        term = search_term.strip().lower()
        if not term:
            return queryset, False
        if SHA256.fullmatch(term):
            return queryset.filter(sha256=term), False
        return search(queryset, term), False

    def has_add_permission(self, request):
        return False  # images come in through albums.ingest, which checks them

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if "nsfw" in form.changed_data:  # a person's flag: the classifier leaves it be
            obj.set_nsfw(obj.nsfw)

    @admin.display(description="thumbnail")
    def thumb(self, image):
        return thumbnail_tag(image.pk)

    @admin.display(description="preview")
    def preview(self, image):
        return thumbnail_tag(image.pk, "admin-preview")

    @admin.display(description="caption", ordering="caption_text")
    def caption(self, image):
        return image.caption

    def save_formset(self, request, form, formset, change):
        labels = formset.save(commit=False)
        for label in labels:
            if label.pk is None:
                label.created_by = request.user
            label.save()
        for label in formset.deleted_objects:
            label.delete()

    @admin.action(description="Add the selected images to an album", permissions=["change"])
    def add_to_album(self, request, queryset):
        return self.with_chosen_album(
            request, queryset, "add_to_album", "Add to an album",
            lambda album: album.add_images(queryset.order_by("pk"), by=request.user),
            "Added {n} images to {album}.",
        )

    @admin.action(description="Remove the selected images from an album",
                  permissions=["change"])
    def remove_from_album(self, request, queryset):
        return self.with_chosen_album(
            request, queryset, "remove_from_album", "Remove from an album",
            lambda album: album.remove_images(queryset.values_list("pk", flat=True)),
            "Removed {n} images from {album}.",
        )

    def with_chosen_album(self, request, queryset, action, title, change, done):
        """Ask which album on an intermediate page, then apply `change(album)`."""
        albums = Album.objects.curatable_by(request.user).order_by("name")
        form = AlbumChoiceForm(request.POST if "apply" in request.POST else None, albums=albums)
        if form.is_valid():
            album = form.cleaned_data["album"]
            n = change(album)
            self.message_user(request, done.format(n=n, album=album), messages.SUCCESS)
            return None  # back to the list
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "form": form,
            "action": action,
            "images": queryset.order_by("pk"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/albums/choose_album.html", context)

    @admin.action(description="Mark the selected images NSFW", permissions=["change"])
    def mark_nsfw(self, request, queryset):
        n = queryset.flag_nsfw(True)
        self.message_user(request, f"Marked {n} images NSFW.", messages.SUCCESS)

    @admin.action(description="Unmark the selected images NSFW", permissions=["change"])
    def unmark_nsfw(self, request, queryset):
        n = queryset.flag_nsfw(False)
        self.message_user(request, f"Unmarked {n} images NSFW.", messages.SUCCESS)

    @admin.action(description="Caption the selected images automatically",
                  permissions=["change"])
    def caption_automatically(self, request, queryset):
        try:
            run = start_image_caption_run(queryset, by=request.user)
        except CaptioningUnavailable as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(
            request,
            f"Captioning the {run.total} selected images that have no caption "
            f"(caption run {run.pk}); images with a caption keep it.",
            messages.SUCCESS,
        )


class AlbumImageInline(admin.TabularInline):
    """The album's images in order; change `position` to reorder. Images are added from
    the image list's "Add to an album" action."""

    model = AlbumImage
    extra = 0
    ordering = ["position", "id"]
    fields = ["preview", "image", "position", "added_by", "added_at"]
    readonly_fields = ["preview", "image", "added_by", "added_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("image", "added_by")

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="thumbnail")
    def preview(self, entry):
        return thumbnail_tag(entry.image_id)


@admin.register(Album)
class AlbumAdmin(admin.ModelAdmin):
    list_display = ["cover_thumbnail", "name", "owner", "visibility", "is_training_set",
                    "image_count", "updated_at"]
    list_display_links = ["name"]
    list_filter = ["visibility", "is_training_set"]
    search_fields = ["name", "slug", "description", "owner__username", "owner__email"]
    fields = ["name", "slug", "description", "owner", "visibility", "is_training_set",
              "cover", "cover_preview", "created_at", "updated_at"]
    readonly_fields = ["cover_preview", "created_at", "updated_at"]
    raw_id_fields = ["cover"]
    inlines = [AlbumImageInline]
    Media = AdminMedia

    def get_queryset(self, request):
        return super().get_queryset(request).with_summary().select_related("owner")

    def get_changeform_initial_data(self, request):
        return {"owner": request.user.pk, **super().get_changeform_initial_data(request)}

    @admin.display(description="cover")
    def cover_thumbnail(self, album):
        return thumbnail_tag(album.cover_image_id)

    @admin.display(description="cover preview")
    def cover_preview(self, album):
        return thumbnail_tag(getattr(album, "cover_image_id", None), "admin-preview")


@admin.register(CaptionRun)
class CaptionRunAdmin(admin.ModelAdmin):
    """Automatic caption runs and their progress: read-only."""

    list_display = ["id", "album", "status", "done", "total", "empty", "failed", "created_by",
                    "created_at", "finished_at"]
    list_filter = ["status"]
    list_select_related = ["album", "created_by"]
    readonly_fields = ["album", "image_ids", "status", "total", "done", "empty", "failed", "error",
                       "created_by", "created_at", "started_at", "finished_at", "attempts",
                       "worker"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ScrapeRun)
class ScrapeRunAdmin(admin.ModelAdmin):
    """Scrape runs and their progress, read-only (started from the scrape page or the API).
    Admins see every run; an editor sees their own, as on the pages."""

    list_display = ["id", "start_url", "album", "status", "pages_visited", "images_found",
                    "images_kept", "created_by", "created_at", "finished_at"]
    list_filter = ["status"]
    list_select_related = ["album", "created_by"]
    readonly_fields = [field.name for field in ScrapeRun._meta.fields]
    actions = ["cancel_runs"]

    def get_queryset(self, request):
        runs = super().get_queryset(request)
        if request.user.has_perm("albums.delete_scraperun"):  # admins hold every permission
            return runs
        return runs.filter(created_by=request.user)

    def has_add_permission(self, request):
        return False

    @admin.action(description="Cancel the selected runs", permissions=["change"])
    def cancel_runs(self, request, queryset):
        cancelled = sum(1 for run in queryset if run.cancel())
        self.message_user(request, f"Cancelled {cancelled} runs.")
