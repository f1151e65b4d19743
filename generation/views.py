"""Pages: generate, my jobs, a job with its live progress, prompt sets and batches.

The generate page submits in place when it can (static/js/generate.js): a job queued comes
back as its progress fragment, put above the earlier results and polled (poll.js), with no
reload; a refusal comes back as the errors above the form. Without JavaScript the same view
redirects to the job's page."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from albums.models import Image
from core.errors import LimitExceeded, limit_page
from core.pagination import CappedPaginator

from .forms import BatchForm, GenerateForm, SetLorasForm
from .models import Batch, Job, PromptSet
from .remix import start_from_image
from .rules import LORA_WEIGHT, MAX_LORAS, SIZE, SIZE_MULTIPLE
from .submit import remix_job, submit_batch, submit_job

# What the image pages' buttons start (?init_image=<id>&mode=): its initial values beyond
# the picture's own prompt and size. Variations: the same prompt, a new seed, a low strength;
# upscale: twice the size (within the limit), redrawn lightly.
START_MODES = {
    "img2img": {},
    "inpaint": {"strength": 1.0},
    "variations": {"strength": 0.35, "seed": None},
    "upscale": {"strength": 0.3},
}
# The images of the user offered as starting points on the generate page.
STRIP_SIZE = 12


@login_required
@require_http_methods(["GET", "POST"])
@permission_required("generation.add_job", raise_exception=True)
def generate(request):
    source, mode = None, request.GET.get("mode", "img2img")
    if mode not in START_MODES:
        mode = "img2img"
    if request.method == "POST":
        form = GenerateForm(request.POST, user=request.user)
        in_place = request.headers.get("X-Requested-With") == "generate"  # generate.js
        if form.is_valid():
            try:
                job = submit_job(request.user, form.generation_params())
            except LimitExceeded as exc:
                if in_place:
                    return _form_errors(request, [str(exc)], exc.status, exc.headers)
                return limit_page(request, exc, "generation/generate.html",
                                  _generate_context(request, form, None, mode))
            except ValidationError as exc:
                form.add_generation_errors(exc)
            else:
                if in_place:
                    return render(request, "generation/_job_status.html", {"job": job})
                return redirect(job)
        if in_place:
            return _form_errors(request, form.error_lines(), 400)
        picked = form.cleaned_data.get("init_image") if hasattr(form, "cleaned_data") else None
        if picked:
            source = Image.objects.visible_to(request.user).filter(pk=picked).first()
            mode = "inpaint" if request.POST.get("mask_data") else mode
    else:
        initial = request.GET.dict()
        initial.pop("mode", None)
        if "from_image" in initial:
            image_initial, notes = start_from_image(_visible_image(request,
                                                                   initial.pop("from_image")))
            initial.update(image_initial)
            for note in notes:
                messages.warning(request, note)
        if "init_image" in initial:
            source = _visible_image(request, initial["init_image"])
            initial.update(_start_from(source, mode))
        form = GenerateForm(initial=initial, user=request.user)
    return render(request, "generation/generate.html",
                  _generate_context(request, form, source, mode))


def _form_errors(request, errors, status, headers=None):
    """The generate page's answer to a refused submission sent by generate.js: the errors,
    for their place above the form (#form-errors), so the form keeps what was typed and
    drawn."""
    response = render(request, "generation/_form_errors.html", {"errors": errors},
                      status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _start_from(image, mode):
    """The generate form's initial values for starting from `image` in `mode`: its own
    prompt and parameters where it has them (start_from_image), its size (twice, to
    upscale), and the mode's settings."""
    initial, _ = start_from_image(image)
    scale = 2 if mode == "upscale" else 1
    width, height = (min(max(side * scale // SIZE_MULTIPLE * SIZE_MULTIPLE, SIZE[0]), SIZE[1])
                     for side in (image.width, image.height))
    initial.update(size=f"{width}x{height}", init_image=image.pk, **START_MODES[mode])
    return initial


def _generate_context(request, form, source, mode):
    strip = (Image.objects.filter(created_by=request.user).shown_in_lists_to(request.user)
             .order_by("-created_at", "-id"))
    return {"form": form, "source": source, "mode": mode, "strip": strip[:STRIP_SIZE],
            "max_loras": MAX_LORAS, "lora_weight": LORA_WEIGHT}


def _visible_image(request, pk):
    """An image the user may see (a picture of theirs or of an album shared with them),
    else 404: the generate page starts from it (?from_image=)."""
    if not str(pk).isdigit():
        raise Http404("No such image.")
    return get_object_or_404(Image.objects.visible_to(request.user), pk=pk)


@login_required
def job_list(request):
    jobs = Job.objects.filter(owner=request.user).select_related("model")
    page = CappedPaginator(jobs, 25).get_page(request.GET.get("page"))
    # While a job of the page is queued or running, the page refreshes its rows (poll.js).
    active = any(not job.is_finished for job in page)
    return render(request, "generation/job_list.html", {"page": page, "active": active})


def _visible_job(request, pk):
    return get_object_or_404(
        Job.objects.visible_to(request.user).select_related("model", "owner", "batch")
        .prefetch_related("images", "joblora_set__lora"), pk=pk)


@login_required
def job_detail(request, pk):
    job = _visible_job(request, pk)
    return render(request, "generation/job_detail.html", {"job": job})


@login_required
def job_status(request, pk):
    """The progress fragment the job page polls (static/js/poll.js, with backoff)."""
    return render(request, "generation/_job_status.html", {"job": _visible_job(request, pk)})


@login_required
@require_POST
def job_cancel(request, pk):
    job = _visible_job(request, pk)
    if job.cancel():
        messages.success(request, f"Job {job.pk} was cancelled.")
    return redirect(safe_next(request) or job.get_absolute_url())


def safe_next(request):
    """The `next` page the form asks for, if it is one of this site's: never another site
    (an open redirect a link could send a signed-in user through)."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):
        return target
    return None


@login_required
@require_POST
@permission_required("generation.add_job", raise_exception=True)
def job_retry(request, pk):
    try:
        job = remix_job(request.user, _visible_job(request, pk))
    except (LimitExceeded, ValidationError) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect("job_detail", pk=pk)
    return redirect(job)


@login_required
def set_list(request):
    sets = PromptSet.objects.all()
    return render(request, "generation/set_list.html", {"sets": sets})


def _set_page(request, prompt_set, form=None, lora_form=None, status=200):
    form = form or BatchForm(initial={"theme": prompt_set.example_theme})
    if lora_form is None and request.user.has_perm("generation.change_promptset"):
        lora_form = SetLorasForm(prompt_set=prompt_set, user=request.user)
    return render(request, "generation/set_detail.html",
                  {"set": prompt_set, "form": form, "lora_form": lora_form}, status=status)


@login_required
@require_POST
@permission_required("generation.change_promptset", raise_exception=True)
def set_loras(request, slug):
    """Replace the set's LoRAs (the batches' default), checked by PromptSet.set_loras."""
    prompt_set = get_object_or_404(PromptSet, slug=slug)
    form = SetLorasForm(request.POST, prompt_set=prompt_set, user=request.user)
    if form.is_valid():
        try:
            prompt_set.set_loras(form.chosen_loras())
        except ValidationError as exc:
            form.add_rule_errors(exc)
        else:
            messages.success(request, "The set's LoRAs were saved.")
            return redirect("set_detail", slug=prompt_set.slug)
    return _set_page(request, prompt_set, lora_form=form, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def set_detail(request, slug):
    prompt_set = get_object_or_404(PromptSet, slug=slug)
    form = BatchForm(request.POST or None, initial={"theme": prompt_set.example_theme})
    if request.method == "POST":
        if not request.user.has_perm("generation.add_batch"):
            raise PermissionDenied("Starting a batch needs the editor role.")
        if form.is_valid():
            try:
                batch = submit_batch(request.user, prompt_set,
                                     theme=form.cleaned_data["theme"],
                                     overrides=form.overrides())
                return redirect(batch)
            except LimitExceeded as exc:
                return limit_page(request, exc, "generation/set_detail.html",
                                   {"set": prompt_set, "form": form})
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
    return _set_page(request, prompt_set, form)


def _visible_batch(request, pk):
    batches = Batch.objects.visible_to(request.user).select_related("prompt_set", "album")
    return get_object_or_404(batches, pk=pk)


@login_required
def batch_detail(request, pk):
    batch = _visible_batch(request, pk)
    return render(request, "generation/batch_detail.html", {"batch": batch})


@login_required
def batch_status(request, pk):
    batch = _visible_batch(request, pk)
    return render(request, "generation/_batch_status.html", {"batch": batch})


@login_required
@require_POST
def batch_cancel(request, pk):
    batch = _visible_batch(request, pk)
    batch.cancel()
    messages.success(request, "The batch was cancelled.")
    return redirect(batch)
