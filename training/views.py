"""Pages: train a LoRA from an album, the runs, a run with its live progress and loss chart."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from albums.files import send_file
from albums.models import Album
from core.errors import LimitExceeded, limit_page
from core.pagination import CappedPaginator

from .forms import TrainForm
from .models import TrainingRun
from .submit import retry_run, submit_run


@login_required
@require_http_methods(["GET", "POST"])
@permission_required("training.add_trainingrun", raise_exception=True)
def album_train(request, slug):
    album = get_object_or_404(Album.objects.visible_to(request.user), slug=slug)
    form = TrainForm(request.POST or None, album=album, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            return redirect(submit_run(request.user, form.cleaned_training))
        except LimitExceeded as exc:
            return limit_page(request, exc, "training/train.html", {"album": album, "form": form})
    return render(request, "training/train.html", {"album": album, "form": form})


@login_required
def run_list(request):
    runs = TrainingRun.objects.visible_to(request.user).select_related("album", "owner", "lora")
    page = CappedPaginator(runs, 25).get_page(request.GET.get("page"))
    # While a run of the page is queued or running, the page refreshes its rows (poll.js).
    active = any(not run.is_finished for run in page)
    return render(request, "training/run_list.html", {"page": page, "active": active})


def _visible_run(request, pk):
    runs = TrainingRun.objects.visible_to(request.user).select_related(
        "album", "owner", "base_model", "lora")
    return get_object_or_404(runs, pk=pk)


@login_required
def run_detail(request, pk):
    return render(request, "training/run_detail.html",
                  {"run": _visible_run(request, pk)})


@login_required
def run_status(request, pk):
    """The progress fragment the run page polls (static/js/poll.js, with backoff)."""
    return render(request, "training/_run_status.html", {"run": _visible_run(request, pk)})


@login_required
@require_POST
def run_cancel(request, pk):
    run = _visible_run(request, pk)
    if run.cancel():
        messages.success(request, f"{run} was cancelled.")
    return redirect(run)


@login_required
@require_POST
@permission_required("training.add_trainingrun", raise_exception=True)
def run_retry(request, pk):
    run = _visible_run(request, pk)
    try:
        retry_run(run, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except LimitExceeded as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{run} was queued again.")
    return redirect(run)


@login_required
def run_kohya(request, pk):
    """The LoRA in kohya format (for A1111 and ComfyUI), as a download."""
    run = _visible_run(request, pk)
    if not run.kohya_file:
        raise Http404("This run has no LoRA yet.")
    response = send_file(run.kohya_file.name, "application/octet-stream",
                         f"run-{run.pk}-kohya.safetensors")
    response["Content-Disposition"] = response["Content-Disposition"].replace(
        "inline", "attachment")
    return response
