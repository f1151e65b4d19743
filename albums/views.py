"""Gallery pages: the album list, an album's thumbnails, one image.

Who sees what is decided by the models (Album/Image `visible_to`); what the caller may not
see answers 404, so another user's private album looks like a missing one. Changing needs
`can_curate` (else 403). Anonymous visitors are sent to sign in unless
IMAGINEER_PUBLIC_GALLERY is on; then they browse public albums read-only.

Each page costs a fixed number of queries whatever its size: summaries and captions are
annotated (with_summary, with_caption) and thumbnails are addressed by image id.
"""

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from core.errors import LimitExceeded, limit_page
from core.pagination import CappedPaginator

from .captioning import CaptioningUnavailable
from .forms import AlbumChoiceForm, AlbumForm, CaptionForm, UploadForm
from .ingest import UploadRejected, store_uploads
from .models import Album, Image, Label, ScrapeRun
from .scrape import start_scrape, validate_scrape
from .tasks import captioning_off, start_caption_run

ALBUMS_PER_PAGE = 48
IMAGES_PER_PAGE = 60


def gallery_page(view):
    """Signed-in users; anonymous visitors only while the public gallery is on."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated and not settings.IMAGINEER_PUBLIC_GALLERY:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


def can_upload(user, album):
    return album.can_curate(user) and user.has_perm("albums.add_image")


@gallery_page
@require_http_methods(["GET", "POST"])
def album_list(request):
    """The albums as a grid of covers; POST creates an album owned by the caller."""
    form = None
    if request.user.has_perm("albums.add_album"):
        form = AlbumForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            album = form.save(commit=False)
            album.owner = request.user
            album.save()
            messages.success(request, f"Created the album {album.name}.")
            return redirect("album_detail", slug=album.slug)
    elif request.method == "POST":
        raise PermissionDenied
    albums = Album.objects.visible_to(request.user).with_summary().select_related("owner")
    page = CappedPaginator(albums, ALBUMS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "albums/album_list.html", {"page": page, "form": form})


@gallery_page
def album_detail(request, slug):
    album = get_object_or_404(
        Album.objects.visible_to(request.user).select_related("owner"), slug=slug
    )
    return album_page(request, album)


def album_page(request, album, status=200):
    """The album page; also the answer (400) to a refused upload, with the reason shown."""
    return render(request, ALBUM_PAGE, album_context(request, album), status=status)


ALBUM_PAGE = "albums/album_detail.html"


def album_context(request, album):
    images = (
        Image.objects.filter(album_entries__album=album)
        .shown_in_lists_to(request.user)
        .with_caption()
        .order_by("album_entries__position", "album_entries__id")
    )
    page = CappedPaginator(images, IMAGES_PER_PAGE).get_page(request.GET.get("page"))
    context = {"album": album, "page": page, "can_curate": album.can_curate(request.user)}
    if context["can_curate"]:
        context["captioning"] = captioning_off() is None
        context["caption_run"] = album.caption_runs.first()
    if can_upload(request.user, album):
        context["upload_form"] = UploadForm()
    return context


def curated_album(request, slug):
    """The album at `slug` if the caller may change it: 404 if unseen, 403 if not theirs."""
    album = get_object_or_404(Album.objects.visible_to(request.user), slug=slug)
    if not album.can_curate(request.user):
        raise PermissionDenied
    return album


@login_required
@require_POST
def album_upload(request, slug):
    """Store the images (all or none: albums.ingest checks them) and add them to the album.
    A refused upload answers 400 with the album page and the reason."""
    album = curated_album(request, slug)
    if not can_upload(request.user, album):
        raise PermissionDenied
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, f"Images: {' '.join(form.errors['file'])}")
        return album_page(request, album, status=400)
    try:
        stored = store_uploads(form.cleaned_data["file"], by=request.user, album=album)
    except UploadRejected as exc:
        for error in exc.errors:
            messages.error(request, f"Nothing was uploaded: {error}")
        return album_page(request, album, status=400)
    except LimitExceeded as exc:
        return limit_page(request, exc, ALBUM_PAGE, album_context(request, album))
    duplicates = sum(1 for _, created in stored if not created)
    note = f" ({duplicates} you had uploaded before: those images were used)" if duplicates else ""
    messages.success(request, f"Uploaded {len(stored)} images to {album.name}{note}.")
    return redirect("album_detail", slug=album.slug)


@login_required
@require_POST
def album_caption(request, slug):
    """Start captioning the album's uncaptioned images; the album page shows progress."""
    album = curated_album(request, slug)
    try:
        run = start_caption_run(album, by=request.user)
    except CaptioningUnavailable as exc:
        messages.error(request, str(exc))
    except LimitExceeded as exc:
        return limit_page(request, exc, ALBUM_PAGE, album_context(request, album))
    else:
        messages.success(request, run.summary)
    return redirect("album_detail", slug=album.slug)


@gallery_page
@require_http_methods(["GET", "POST"])
def image_detail(request, pk):
    """The image, its metadata and albums; POST (curators) sets its caption."""
    image = get_object_or_404(
        Image.objects.visible_to(request.user).with_caption().select_related("created_by"),
        pk=pk,
    )
    caption_form = None
    if image.can_curate(request.user):
        if request.method == "POST":
            caption_form = CaptionForm(request.POST)
            if caption_form.is_valid():
                text = caption_form.cleaned_data["text"]
                if text != image.caption:
                    image.set_caption(text, by=request.user, source=Label.Source.MANUAL)
                messages.success(request, "Caption saved.")
                return redirect("image_detail", pk=image.pk)
        else:
            caption_form = CaptionForm(initial={"text": image.caption})
    elif request.method == "POST":
        raise PermissionDenied
    context = {
        "image": image,
        "albums": Album.objects.visible_to(request.user)
        .filter(entries__image=image)
        .order_by("name"),
        "caption_form": caption_form,
        "album_form": AlbumChoiceForm(albums=addable_albums(request.user, image)),
    }
    return render(request, "albums/image_detail.html", context)


def addable_albums(user, image):
    """The albums the user may add `image` to: those they curate that lack it."""
    return Album.objects.curatable_by(user).exclude(entries__image=image).order_by("name")


@login_required
@require_POST
def image_add_to_album(request, pk):
    image = get_object_or_404(Image.objects.visible_to(request.user), pk=pk)
    form = AlbumChoiceForm(request.POST, albums=Album.objects.curatable_by(request.user))
    if form.is_valid():
        album = form.cleaned_data["album"]
        if album.add_images([image], by=request.user):
            messages.success(request, f"Added the image to {album.name}.")
        else:
            messages.info(request, f"The image is already in {album.name}.")
    else:
        messages.error(request, "Album: choose one of the albums you may change.")
    return redirect("image_detail", pk=image.pk)


@login_required
@require_http_methods(["GET", "POST"])
def scrape_list(request):
    """Your scrape runs; POST (editors, admins) starts one with the fields of
    albums.scrape.validate_scrape, errors shown by field."""
    may_scrape = request.user.has_perm("albums.add_scraperun")
    errors, values, status = {}, {}, 200
    if request.method == "POST":
        if not may_scrape:
            raise PermissionDenied
        values = {name: request.POST.get(name, "") for name in request.POST
                  if name != "csrfmiddlewaretoken"}
        values.setdefault("same_site", "off")
        try:
            run = start_scrape(request.user, validate_scrape(values, request.user))
        except ValidationError as exc:
            errors, status = exc.message_dict, 400
        except LimitExceeded as exc:
            return limit_page(request, exc, "albums/scrape_list.html",
                              _scrape_list_context(request, may_scrape, errors, values))
        else:
            return redirect("scrape_detail", pk=run.pk)
    return render(request, "albums/scrape_list.html",
                  _scrape_list_context(request, may_scrape, errors, values), status=status)


def _scrape_list_context(request, may_scrape, errors, values):
    return {
        "runs": ScrapeRun.objects.visible_to(request.user).select_related("album")[:50],
        "may_scrape": may_scrape, "errors": errors, "values": values,
        "albums": Album.objects.curatable_by(request.user).filter(owner=request.user),
    }


@login_required
def scrape_detail(request, pk):
    """A run's progress (the page refreshes itself while it runs)."""
    run = get_object_or_404(ScrapeRun.objects.visible_to(request.user), pk=pk)
    return render(request, "albums/scrape_detail.html", {"run": run})


@login_required
@require_POST
def scrape_cancel(request, pk):
    run = get_object_or_404(ScrapeRun.objects.visible_to(request.user), pk=pk)
    if not request.user.has_perm("albums.change_scraperun"):
        raise PermissionDenied
    run.cancel()
    return redirect("scrape_detail", pk=run.pk)
