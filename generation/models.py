"""The model registry, prompt sets, batches and jobs.

Jobs own their state changes (start, progress, finish, fail, cancel), each in one
place and under a transaction; views, the API and tasks call them.
"""

import csv
import hashlib
import io
import json
import tempfile
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import models, transaction
from django.db.models import Count, F, Q
from django.urls import reverse
from django.utils import timezone

from accounts.limits import check_storage, counts_toward_quota, lock_user, throttle
from accounts.roles import ADMIN, EDITOR, VIEWER, roles_within
from albums.models import Album, Image, unique_slug
from core.errors import CONFLICT, NO_SUCH_ROW
from core.storage import fetch
from workers.models import LeasedWork, LeasedWorkQuerySet

from .engine.params import FIELDS as PARAMETERS
from .engine.params import GenerationParams
from .rules import (
    GUIDANCE,
    IMAGE_DEFAULTS,
    LIMITS,
    NSFW_THRESHOLD,
    OUTPAINT_SIDES,
    PROMPT_MAX,
    SCHEDULERS,
    SIZE,
    SIZE_MULTIPLE,
    STEPS,
    check_model_source,
    check_source_shape,
    fill_template,
    size_rule,
    template_columns,
    validate_lora_choice,
    validate_lora_choices,
    validate_site_settings,
)


class Family(models.TextChoices):
    SD15 = "sd15", "Stable Diffusion 1.x"
    SD2 = "sd2", "Stable Diffusion 2.x"
    SDXL = "sdxl", "Stable Diffusion XL"


# Families the engine generates with (SDXL with StableDiffusionXLPipeline) and the trainer
# trains LoRAs for.
SUPPORTED_FAMILIES = {Family.SD15, Family.SD2, Family.SDXL}


class ModelVersionQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)

    def bases(self):
        return self.filter(kind=ModelVersion.Kind.BASE)

    def loras(self):
        return self.filter(kind=ModelVersion.Kind.LORA)

    def upscalers(self):
        return self.filter(kind=ModelVersion.Kind.UPSCALER)

    def vaes(self):
        return self.filter(kind=ModelVersion.Kind.VAE)

    def default_base(self):
        return self.bases().active().filter(is_default=True).first()

    def usable_by_user(self, user):
        """The models `user` may use: those whose usable_by is a role the user holds or is
        above (ModelVersion.usable_by). The one rule of who may use which model: lists,
        form choices and the API's choices filter by it, and generation checks it."""
        return self.filter(usable_by__in=roles_within(user))


class SourceRefused(Exception):
    """A registered model whose source the settings no longer allow (a worker loading it).
    Its message names the model, never the path: it becomes the error of a job."""


def model_upload_name(instance, filename):
    # Keyed by the content hash, never by the name a user sent; its suffix is the file's
    # format (an upscaler may be a .pth).
    return f"models/{instance.sha256}{model_suffix(filename)}"


def model_suffix(filename):
    """".pth" for a file named so (an upscaler's PyTorch weights), else ".safetensors"."""
    return ".pth" if str(filename).lower().endswith(".pth") else ".safetensors"


@counts_toward_quota(owner="created_by", size="size_bytes")
class ModelVersion(models.Model):
    """A base model, a LoRA, a VAE or an upscaler (ESRGAN family) that generation can use.

    Registration checks the weights (from_source, from_upload): where they come from
    (rules.check_model_source: IMAGINEER_MODEL_ROOTS, IMAGINEER_HUB_DOWNLOADS), their
    kind and family, and their hash, which every PNG made with them carries. So what was
    checked stays: FIXED_FIELDS never change once registered (clean(), for the admin and
    the API alike); other weights are another model version. A base may name a
    registered VAE (`vae`) that the worker loads in place of its own (A1111's "SD VAE"),
    chosen and changed at will but checked to fit it (check_vae_choice).
    """

    FIXED_FIELDS = ["kind", "source", "file", "family"]
    FIXED_MESSAGE = "Fixed once registered: register a new model version instead."
    DEFAULT_FOR_EVERYONE = ("usable_by: the default base model is usable by everyone "
                            "(what a request without a model gets).")

    class Kind(models.TextChoices):
        BASE = "base", "Base model"
        LORA = "lora", "LoRA"
        VAE = "vae", "VAE"
        UPSCALER = "upscaler", "Upscaler"

    class UsableBy(models.TextChoices):
        """The lowest role that may use the model (roles are ordered: accounts/roles.py)."""

        EVERYONE = VIEWER, "Everyone (viewers, editors and admins)"
        EDITORS = EDITOR, "Editors and admins"
        ADMINS = ADMIN, "Admins only"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    source = models.CharField(
        max_length=500,
        blank=True,
        help_text="A Hugging Face hub id (runwayml/stable-diffusion-v1-5) or a local path. "
        "Empty when a file is uploaded.",
    )
    file = models.FileField(upload_to=model_upload_name, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    size_bytes = models.BigIntegerField(default=0)
    family = models.CharField(max_length=8, choices=Family.choices, default=Family.SD15)
    trigger_words = models.CharField(max_length=300, blank=True)
    version = models.CharField(max_length=50, blank=True)
    is_active = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)
    usable_by = models.CharField(
        max_length=8, choices=UsableBy.choices, default=UsableBy.EVERYONE,
        help_text="Who may generate, batch and train with it; others neither see it nor "
        "may choose it. The default base model is usable by everyone.")
    description = models.TextField(blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    native_size = models.PositiveIntegerField(
        null=True, blank=True, editable=False,
        help_text="The side in pixels a base's UNet draws at, read from its configs at "
        "registration (empty: its family's); its sizes follow (rules.size_rule).")
    vae = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="bases_using",
        limit_choices_to={"kind": "vae"},
        help_text="A base model's VAE override: a registered VAE of its family that the "
        "worker loads in place of the base's own (empty: its own). A VAE retired later stays "
        "in use by the bases that name it; one deleted leaves them their own.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["kind", "name", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_model"
            ),
            models.CheckConstraint(
                condition=Q(is_default=False) | Q(kind="base"), name="default_is_a_base"
            ),
            models.CheckConstraint(
                condition=Q(is_default=False) | Q(usable_by="viewer"),
                name="default_is_for_everyone",
            ),
        ]

    def __str__(self):
        return f"{self.name} {self.version}".strip()

    @property
    def adapter_name(self):
        """The stable adapter name of a LoRA inside the worker's pipeline."""
        return f"lora_{self.pk}"

    @property
    def source_is_local(self):
        """Whether `source` is a path on the server (else a hub id, or empty for a file)."""
        return bool(self.source) and (self.source.startswith((".", "/")) or
                                      Path(self.source).is_absolute())

    @property
    def short_hash(self):
        return self.sha256[:10]

    def engine_source(self):
        """What the engine loads: a hub id or a local path; for an uploaded file, its copy
        in IMAGINEER_MODEL_CACHE, fetched through the storage once and named by its hash
        (the storage may be a bucket on another machine)."""
        if not self.file:
            try:
                check_model_source(self.source)  # the settings may have changed since
            except ValidationError as exc:
                raise SourceRefused(
                    f"{self}: its source is no longer allowed (IMAGINEER_MODEL_ROOTS, "
                    "IMAGINEER_HUB_DOWNLOADS); an admin can register it again.") from exc
            return self.source
        cache = settings.IMAGINEER_MODEL_CACHE / f"{self.sha256}{model_suffix(self.file.name)}"
        if not cache.exists():
            fetch(self.file.name, cache, sha256=self.sha256)
        return str(cache)

    def may_be_used_by(self, user):
        return self.usable_by in roles_within(user)

    @staticmethod
    def refusal(field, value, kind="model"):
        """The message when `value` (an id) names no active model of `kind` that the caller
        may use: the same whether it exists or not, so it tells nothing of a model the
        caller may not see (named by id only)."""
        return (f"{field} must be an active {kind} your role may use (its usable_by); "
                f"{value} is not.")

    def refusal_for(self, user, field="model"):
        """The message refusing `user` this model on `field`, or None if they may use it."""
        if self.may_be_used_by(user):
            return None
        return self.refusal(field, self.pk, self.kind_label(self.kind))

    @classmethod
    def kind_label(cls, kind):
        """How refusals name a kind: "base model", "LoRA", "VAE", "upscaler"."""
        return {cls.Kind.LORA: "LoRA", cls.Kind.VAE: "VAE",
                cls.Kind.UPSCALER: "upscaler"}.get(kind, "base model")

    def latent_channels(self):
        """The latent channels of this base's VAE, or of this VAE (engine/vae.py), read from
        the weights' headers once."""
        if getattr(self, "_latent_channels", None) is None:
            from .engine.vae import latent_channels

            try:
                source = self.engine_source()
            except SourceRefused as exc:
                raise ValidationError({"vae": str(exc)}) from exc
            self._latent_channels = latent_channels(source)
        return self._latent_channels

    def check_vae_choice(self, vae):
        """Whether this model may take `vae` (a ModelVersion, or None for its own VAE) as its
        VAE override: a base only, and an active VAE usable by all who may use the base, of a
        family whose VAEs fit it (SD 1.x and 2.x share theirs), with the latent channels of
        its own. The admin (through clean) and
        the API's serializer both ask here."""
        from .engine.vae import VAE_FAMILIES

        if vae is None:
            return
        if self.kind != self.Kind.BASE:
            raise ValidationError({"vae": "vae: only a base model takes a VAE override; "
                                          f"this is a {self.get_kind_display()}."})
        if vae.kind != self.Kind.VAE or not vae.is_active:
            raise ValidationError({"vae": self.refusal("vae", vae.pk, "VAE")})
        order = list(self.UsableBy.values)
        if order.index(vae.usable_by) > order.index(self.usable_by):
            raise ValidationError({"vae": (
                f"vae: {vae.name} is usable by {vae.get_usable_by_display().lower()}, and "
                f"this base model by {self.get_usable_by_display().lower()}: its VAE must be "
                "usable by everyone who may use the base.")})
        if VAE_FAMILIES[vae.family] != VAE_FAMILIES[self.family]:
            raise ValidationError({"vae": (
                f"vae: {vae.name} is a {vae.get_family_display()} VAE and this base model is "
                f"{self.get_family_display()}: SD 1.x and 2.x bases take an SD 1.x/2.x VAE, "
                "SDXL bases an SDXL VAE.")})
        theirs, ours = vae.latent_channels(), self.latent_channels()
        if theirs != ours:
            raise ValidationError({"vae": (
                f"vae: {vae.name} has {theirs} latent channels; this base model's VAE has "
                f"{ours}: a VAE must make the latents its UNet was trained on.")})

    def size_rule(self):
        """(default (width, height) or None for the site settings', (low, high)): the sizes
        this base takes, by its family (rules.size_rule)."""
        return size_rule(self.family, self.native_size)

    def engine_vae(self):
        """The (file, family) of this base's VAE override for the engine, or None."""
        if self.vae is None:
            return None
        return (self.vae.engine_source(), self.vae.family)

    def check_usable_by_choice(self, user, value):
        """Who may set `usable_by` to what: at most the user's own role (an editor cannot
        make a model the admins' alone, then lose sight of it), and everyone for the
        default base model. The admin's form and the API's serializer ask here."""
        allowed = roles_within(user)
        if value not in allowed:
            raise ValidationError({"usable_by": (
                f"usable_by must be one of {', '.join(allowed) or 'no role'} (at most your "
                f"own role); got {value!r}.")})
        if self.is_default and value != self.UsableBy.EVERYONE:  # the state: a conflict
            raise ValidationError({"usable_by": ValidationError(self.DEFAULT_FOR_EVERYONE,
                                                                code=CONFLICT)})

    def clean(self):
        if not self.source and not self.file:
            raise ValidationError({"source": "Give a hub id or local path, or upload a file."})
        if self.kind != self.Kind.BASE and self.is_default:
            raise ValidationError({"is_default": "Only a base model can be the default."})
        if self.is_default and self.usable_by != self.UsableBy.EVERYONE:
            raise ValidationError({"usable_by": ValidationError(self.DEFAULT_FOR_EVERYONE,
                                                                code=CONFLICT)})
        if self.vae_id is not None:
            self.check_vae_choice(self.vae)
        stored = ModelVersion.objects.filter(pk=self.pk).first() if self.pk else None
        if stored is not None:
            stored.refuse_fixed_changes({name: getattr(self, name) for name in
                                         self.FIXED_FIELDS})

    def refuse_fixed_changes(self, changes):
        """Raise ValidationError naming each of FIXED_FIELDS that `changes` (field -> new
        value) would change on this registered model. The admin (through clean) and the
        API's serializer both ask here."""
        changed = [name for name in self.FIXED_FIELDS
                   if name in changes and changes[name] != getattr(self, name)]
        if changed:
            raise ValidationError({name: ValidationError(self.FIXED_MESSAGE, code=CONFLICT)
                                   for name in changed})

    @transaction.atomic
    def make_default(self):
        if self.kind != self.Kind.BASE:
            raise ValidationError({"is_default": ValidationError(
                "Only a base model can be the default.", code=CONFLICT)})
        if self.usable_by != self.UsableBy.EVERYONE:
            raise ValidationError({"usable_by": ValidationError(self.DEFAULT_FOR_EVERYONE,
                                                                code=CONFLICT)})
        ModelVersion.objects.filter(is_default=True).exclude(pk=self.pk).update(is_default=False)
        self.is_default = True
        self.is_active = True
        self.save(update_fields=["is_default", "is_active"])

    # Registration: `from_source` and `from_upload` check a model and return it unsaved,
    # so forms and serializers can show the errors; `register` saves it.

    @classmethod
    def from_source(cls, *, name, kind, source, family=Family.SD15, **fields):
        """A model by hub id or local path. A LoRA file must parse and fit its family; a
        local base model must be a diffusers folder or a single-file checkpoint, whose
        family is read from its keys (engine/checkpoints.py); a VAE must be a VAE file
        (engine/vae.py), of the family given; an upscaler file must be one of the ESRGAN
        family (engine/upscalers.py)."""
        model = cls(name=name, kind=kind, source=source, family=family, **fields)
        path = check_model_source(source)  # None: a hub id
        if kind == cls.Kind.UPSCALER:
            _require_file(path, f"no upscaler file at {source} (a local .pth or .safetensors "
                                "file).")
            model.note_upscaler(_check_upscaler(path))
            model.sha256, model.size_bytes = _hashed(path)
        elif kind == cls.Kind.LORA:
            _require_file(path, f"no LoRA file at {source}.")
            model.sha256, model.size_bytes = _check_lora(path, family)
        elif kind == cls.Kind.VAE:
            _require_file(path, f"no VAE file at {source}.")
            model.note_vae(_check_vae(path))
            model.sha256, model.size_bytes = _hashed(path)
        elif path is not None and is_file(path):
            model.note_checkpoint(_check_checkpoint(path))
            model.sha256, model.size_bytes = _hashed(path)
            model.native_size = _native_size(path)
        elif path is not None:
            if not is_file(path / "model_index.json"):
                raise ValidationError({"source": (
                    f"{source} is neither a diffusers model folder (no model_index.json) nor "
                    "a single-file .safetensors checkpoint.")})
            model.family = _folder_family(path, family)
            model.native_size = _native_size(path)
            model.sha256 = hashlib.sha256((path / "model_index.json").read_bytes()).hexdigest()
        model.full_clean(exclude=["file"])
        return model

    @classmethod
    def from_upload(cls, uploaded, *, name, kind=Kind.LORA, family=Family.SD15, by=None,
                    **fields):
        """A LoRA, a VAE, a base single-file checkpoint (its family read from its keys) or an
        upscaler (a .pth or .safetensors file of the ESRGAN family), from an uploaded file,
        stored when the model is saved. The upload is read in
        chunks (a checkpoint is gigabytes), from the disk where Django put it.

        `by`: the user who uploads it, whose throttle ("model_uploads") and storage quota it
        counts against (LimitExceeded), before it is read; None for the platform's own
        files (a trained LoRA: its run was checked when it was started)."""
        if fields.get("source"):
            check_source_shape(fields["source"])
        if by is not None:
            throttle(by, "model_uploads")
            check_storage(by, uploaded.size)
        checkpoint = vae_file = upscaler = None
        with _on_disk(uploaded) as path:
            if kind == cls.Kind.BASE:
                checkpoint = _check_checkpoint(path, field="file")
                sha256, size = _hashed(path)
                fields["native_size"] = _native_size(path)
            elif kind == cls.Kind.VAE:
                vae_file = _check_vae(path, field="file")
                sha256, size = _hashed(path)
            elif kind == cls.Kind.UPSCALER:
                upscaler = _check_upscaler(path, field="file")
                sha256, size = _hashed(path)
            else:
                kind = cls.Kind.LORA
                sha256, size = _check_lora(path, family, field="file")
        model = cls(name=name, kind=kind, family=family, sha256=sha256, size_bytes=size,
                    **fields)
        if checkpoint is not None:
            model.note_checkpoint(checkpoint)
        if upscaler is not None:
            model.note_upscaler(upscaler)
        if vae_file is not None:
            model.note_vae(vae_file)
        uploaded.seek(0)
        model.file = File(uploaded, name=f"{kind}{model_suffix(uploaded.name or '')}")
        model.full_clean(exclude=["file"])
        model.quota_user = by  # checked again under their row lock when registered
        return model

    def note_checkpoint(self, info):
        """Take what a single file's keys say (engine/checkpoints.py Checkpoint): its family,
        over any family the caller gave, and an inpainting UNet noted in the description."""
        self.family = info.family
        self._latent_channels = info.latent_channels
        if info.inpainting and "inpainting" not in self.description:
            self.description = " ".join(filter(None, [
                self.description, f"A {info.description} checkpoint: its UNet takes the mask "
                                  "and the masked picture (every call inpaints)."]))

    def note_upscaler(self, info):
        """Note what an upscaler file's keys say (engine/upscalers.py UpscalerInfo) in the
        description: its architecture and scale."""
        if info.description not in self.description:
            self.description = " ".join(filter(None, [self.description,
                                                      f"{info.description[0].upper()}"
                                                      f"{info.description[1:]}."]))

    def note_vae(self, info):
        """Take what a VAE file's keys say (engine/vae.py VaeFile): its latent channels."""
        self._latent_channels = info.latent_channels

    def register(self):
        """Save a checked model; the first base model usable by everyone becomes the
        default. An upload counts against its uploader's storage quota again here, with
        their row locked until it is stored, so that two uploads at once cannot both pass it
        (LimitExceeded)."""
        with transaction.atomic():
            uploader = getattr(self, "quota_user", None)
            if uploader is not None:
                lock_user(uploader)
                check_storage(uploader, self.size_bytes)
            try:
                self.save()
            except Exception:
                if self.file and self.file.name:
                    self.file.delete(save=False)  # no file without its row
                raise
        if (self.kind == self.Kind.BASE and self.usable_by == self.UsableBy.EVERYONE
                and not ModelVersion.objects.default_base()):
            self.make_default()
        return self


@contextmanager
def _on_disk(uploaded):
    """The path of an uploaded file on this machine, under the file's own name (errors
    name the file the user sent): Django's temporary file of a large upload is copied
    in chunks, as is a small one held in memory."""
    settings.IMAGINEER_MODEL_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.IMAGINEER_MODEL_CACHE) as folder:
        path = Path(folder) / Path(uploaded.name or "model.safetensors").name
        uploaded.seek(0)
        with open(path, "wb") as out:
            for chunk in uploaded.chunks() if hasattr(uploaded, "chunks") else [uploaded.read()]:
                out.write(chunk)
        yield path


def _hashed(path):
    from .engine.lora import file_sha256

    return file_sha256(path), path.stat().st_size


def _check_checkpoint(path, field="source"):
    """A base single file must be a checkpoint of a family we run; returns its
    engine Checkpoint (family, inpainting)."""
    from .engine.checkpoints import NotACheckpoint, inspect_checkpoint

    try:
        info = inspect_checkpoint(path)
    except NotACheckpoint as exc:
        raise ValidationError({field: str(exc)}) from exc
    if info.family not in SUPPORTED_FAMILIES:
        raise ValidationError({field: f"{path.name} is a {info.description} checkpoint; "
                                      f"{info.family} models are not supported yet."})
    return info


def _require_file(path, message):
    """A LoRA, a VAE or an upscaler is one local file: `message` (naming `source`, as a
    missing row: 404) where `path` (None: a hub id) is none."""
    if path is None or not is_file(path):
        raise ValidationError({"source": ValidationError(message, code=NO_SUCH_ROW)})


def _check_upscaler(path, field="source"):
    """An upscaler file must be one the engine loads (engine/upscalers.py: RRDBNet or
    SRVGGNetCompact, .pth or .safetensors), its weights fitting the architecture their
    keys describe; returns its UpscalerInfo."""
    from .engine.upscalers import NotAnUpscaler, load_module

    try:
        info, _ = load_module(path)
    except NotAnUpscaler as exc:
        raise ValidationError({field: str(exc)}) from exc
    return info


def _native_size(path):
    from .engine.checkpoints import native_size

    return native_size(path)


def _check_vae(path, field="source"):
    """A VAE must be a VAE file alone (engine/vae.py); returns its VaeFile."""
    from .engine.vae import NotAVae, inspect_vae

    try:
        return inspect_vae(path)
    except NotAVae as exc:
        raise ValidationError({field: str(exc)}) from exc


def _folder_family(path, family):
    """A diffusers folder's family: SDXL when its model_index.json names the SDXL pipeline,
    else the family given (SD 1.x and 2.x share a pipeline class); an SD folder given as
    SDXL, or a folder of another pipeline, is refused."""
    from .engine.checkpoints import folder_pipeline_class

    try:
        name = folder_pipeline_class(path)
    except ValueError as exc:
        raise ValidationError({"source": str(exc)}) from exc
    if name == "StableDiffusionXLPipeline":
        return Family.SDXL
    if family == Family.SDXL:  # what the folder holds, not the request's shape: 409
        raise ValidationError({"family": ValidationError(
            f"{path.name} holds a {name} (SD 1.x or 2.x), not an SDXL model: give family "
            "sd15 or sd2.", code=CONFLICT)})
    return family


def _check_lora(path, family, field="source"):
    """A LoRA must be a parseable safetensors file that fits its family: a standard width
    (engine/lora.py), or the width of a registered base of the family built at shapes of
    its own (the demo model, the tiny SDXL of the tests), the default base first."""
    from .engine.lora import InvalidLora, check_lora_family, file_sha256, inspect_lora

    if family not in SUPPORTED_FAMILIES:
        raise ValidationError({"family": f"{family} models are not supported yet."})
    try:
        inspect_lora(path)  # a LoRA at all: else a bad request (400)
    except InvalidLora as exc:
        raise ValidationError({field: str(exc)}) from exc
    errors = []
    for base in _family_bases(family) or [None]:
        try:
            check_lora_family(path, family, base_dir=base)
            break
        except InvalidLora as exc:
            errors.append(exc)
    else:  # a LoRA that fits no registered base of its family: the registry's state (409)
        raise ValidationError({field: ValidationError(str(errors[0]), code=CONFLICT)})
    return file_sha256(path), path.stat().st_size


def _family_bases(family):
    """The local sources of the active base models of `family` whose UNet config can be
    read (a diffusers folder, a single file carrying its configs), the default first: a
    LoRA of no standard width is checked against them."""
    from .engine.lora import has_unet_config

    bases = ModelVersion.objects.bases().active().filter(family=family, file="")
    found = []
    for base in bases.order_by("-is_default", "-pk"):
        try:
            source = Path(base.engine_source())
        except SourceRefused:
            continue
        if has_unet_config(source):
            found.append(source)
    return found


def is_file(path):
    """Path.is_file(), but false, not an OSError, for a path the system will not look up
    (a name longer than the file system allows): sources are typed by people."""
    try:
        return path.is_file()
    except OSError:
        return False


class PromptSet(models.Model):
    """A template for batches: one prompt per item, e.g. 54 playing cards."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    base_prompt = models.CharField(max_length=500, blank=True)
    prompt_template = models.CharField(
        max_length=500, help_text="With {column} fields filled from each item's CSV row."
    )
    style_suffix = models.CharField(max_length=300, blank=True)
    example_theme = models.CharField(max_length=200, blank=True)
    width = models.PositiveIntegerField(default=512)
    height = models.PositiveIntegerField(default=512)
    negative_prompt = models.CharField(max_length=500, blank=True)
    loras = models.ManyToManyField(ModelVersion, through="PromptSetLora", blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = unique_slug(self, self.name, fallback="set")
        super().save(*args, **kwargs)

    def columns(self):
        """The {column} fields the template names (placeholders only: rules.py)."""
        return template_columns(self.prompt_template)

    def item_columns(self):
        item = self.items.first() if self.pk else None
        return set(item.values) if item else None

    def check_columns(self, columns):
        missing = [column for column in self.columns() if column not in columns]
        if missing:
            raise ValidationError({"prompt_template": ValidationError(
                "prompt_template names columns the items lack: " + ", ".join(missing) + ".",
                code=CONFLICT)})

    def clean(self):
        columns = self.item_columns()
        if columns is not None:
            self.check_columns(columns)
        else:
            self.columns()  # malformed templates are refused even without items
        for field in ("width", "height"):
            value = getattr(self, field)
            if value is None or not SIZE[0] <= value <= SIZE[1] or value % SIZE_MULTIPLE:
                raise ValidationError({field: f"{field} must be a multiple of {SIZE_MULTIPLE} "
                                       f"between {SIZE[0]} and {SIZE[1]}."})

    def lora_choices(self):
        """The set's LoRAs as [(ModelVersion, weight)], the batches' default."""
        return [(link.lora, link.weight) for link in
                self.promptsetlora_set.select_related("lora")]

    @transaction.atomic
    def set_loras(self, loras):
        """Replace the set's LoRAs with `loras` [(ModelVersion, weight)], checked by the
        rule of a job's LoRAs first (rules.validate_lora_choices): all saved, or none."""
        validate_lora_choices(loras)
        self.promptsetlora_set.all().delete()
        PromptSetLora.objects.bulk_create(
            PromptSetLora(prompt_set=self, lora=lora, weight=float(weight))
            for lora, weight in loras)

    def prompt_for(self, item, theme=""):
        """base prompt + the filled template + theme + style suffix."""
        parts = [self.base_prompt, fill_template(self.prompt_template, item.values), theme,
                 self.style_suffix]
        return ", ".join(part.strip() for part in parts if part and part.strip())

    @transaction.atomic
    def import_csv(self, data, max_rows=1000):
        """Replace the items with the rows of a CSV file (bytes or text) with a header."""
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise ValidationError({"file": "the CSV file must be UTF-8 text."}) from exc
        if "\x00" in data:  # no text holds one, and PostgreSQL refuses to store it
            raise ValidationError({"file": "the CSV file must be UTF-8 text; it holds a NUL "
                                           "character."})
        reader = csv.DictReader(io.StringIO(data))
        if not reader.fieldnames:
            raise ValidationError({"file": "the CSV file is empty: it needs a header row."})
        columns = [name.strip() for name in reader.fieldnames]
        self.check_columns(columns)
        rows = []
        for number, row in enumerate(reader, start=2):
            if None in row:
                raise ValidationError({"file": f"line {number} has more fields than the header."})
            values = {key.strip(): (value or "").strip() for key, value in row.items()}
            if not any(values.values()):
                continue
            rows.append(values)
            if len(rows) > max_rows:
                raise ValidationError({"file": f"at most {max_rows} rows."})
        if not rows:
            raise ValidationError({"file": "the CSV file has no rows."})
        self.items.all().delete()
        PromptSetItem.objects.bulk_create(
            PromptSetItem(prompt_set=self, position=position, values=values)
            for position, values in enumerate(rows)
        )
        return len(rows)


class WeightedLora(models.Model):
    """A LoRA and its weight, as a prompt set's default or as a job uses it."""

    lora = models.ForeignKey(ModelVersion, on_delete=models.PROTECT,
                             limit_choices_to={"kind": "lora"})
    weight = models.FloatField(default=1.0)

    class Meta:
        abstract = True

    def __str__(self):
        return f"{self.lora} × {self.weight}"


class PromptSetLora(WeightedLora):
    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE)

    class Meta:
        unique_together = [("prompt_set", "lora")]

    def clean(self):
        if self.lora_id is not None:
            validate_lora_choice(self.lora, self.weight)


class PromptSetItem(models.Model):
    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(default=0)
    values = models.JSONField(default=dict)

    class Meta:
        ordering = ["prompt_set", "position"]

    def __str__(self):
        return ", ".join(f"{key}={value}" for key, value in self.values.items())


class Status(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"  # batches only
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = [Status.SUCCEEDED, Status.PARTIAL, Status.FAILED, Status.CANCELLED]
ACTIVE = [Status.QUEUED, Status.RUNNING]
# The error_type of a job failed because its worker died too often (no exception to name).
WORKER_STOPPED = "WorkerStopped"
# Rows per INSERT when a batch's jobs are written in bulk (Job.create_batch); Django
# splits further where a database allows fewer variables in one statement.
BULK_ROWS = 500
# The error_type of a job stopped past its time limit (JobTimedOut).
TIMEOUT = "timeout"


class JobTimedOut(Exception):
    """A job ran past its time limit (IMAGINEER_JOB_TIME_LIMIT, or its worker's task
    timeout): it fails with error_type "timeout" (Job.fail reads `error_type`)."""

    error_type = TIMEOUT
# Upper bounds (seconds) of the job duration histogram's buckets (/metrics): a 64 px demo
# job takes about a second, a 512 px job on a CPU minutes.
DURATION_BUCKETS = [1, 2, 5, 10, 30, 60, 120, 300, 600, 1800]


class Counter(models.Model):
    """A total for /metrics that only goes up: jobs submitted, refused and ended, their
    run time, the errors that failed them, training runs ended.

    The totals live in the database, not in a process's memory, so that every web
    process and worker adds to the same figures and any scrape reads them whole; and
    apart from the rows they count, so that deleting old jobs lowers no total (Prometheus
    would take that for a reset). One row per name and label values. `add` bumps it with
    an F() update in the caller's transaction: a total moves when what it counts commits.
    """

    name = models.CharField(max_length=100)
    labels = models.CharField(max_length=300, blank=True,
                              help_text="The label values, as a JSON object.")
    value = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "labels"],
                                               name="one_counter_per_labels")]

    def __str__(self):
        return f"{self.name}{self.labels} = {self.value}"

    @classmethod
    def add(cls, name, amount=1, **labels):
        key = json.dumps(labels, sort_keys=True)
        rows = cls.objects.filter(name=name, labels=key)
        if not rows.update(value=F("value") + amount):
            # The first of its kind. Two processes may get here at once: one row is made
            # (the other insert waits for it, then does nothing) and both updates count.
            cls.objects.bulk_create([cls(name=name, labels=key)], ignore_conflicts=True)
            rows.update(value=F("value") + amount)

    @classmethod
    def totals(cls):
        """{name: [(labels, value), ...]} of every counter, in one query."""
        found = {}
        for name, labels, value in cls.objects.values_list("name", "labels", "value"):
            found.setdefault(name, []).append((json.loads(labels), value))
        return found


def duration_bucket(seconds):
    """The `le` label of the histogram bucket a duration falls into (not cumulative)."""
    return next((str(bound) for bound in DURATION_BUCKETS if seconds <= bound), "+Inf")


class BatchQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Whoever sees every job (generation.see_all_jobs) sees every batch; others theirs."""
        if user.has_perm("generation.see_all_jobs"):
            return self
        return self.filter(owner=user)


class Batch(models.Model):
    """One job per item of a prompt set; its images are gathered into an album."""

    prompt_set = models.ForeignKey(PromptSet, on_delete=models.PROTECT, related_name="batches")
    theme = models.CharField(max_length=200, blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="batches")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    album = models.ForeignKey(Album, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = BatchQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "batches"
        indexes = [models.Index(fields=["owner", "created_at", "id"], name="batch_owner_newest")]

    def __str__(self):
        return f"{self.prompt_set} {self.theme}".strip() + f" #{self.pk}"

    def get_absolute_url(self):
        return reverse("batch_detail", args=[self.pk])

    @property
    def progress(self):
        done = self.succeeded + self.failed + self.jobs.filter(status=Status.CANCELLED).count()
        return done / self.total if self.total else 0.0

    @transaction.atomic
    def refresh_status(self):
        """Recount from the jobs; the batch ends when none of its jobs is active, and then
        gathers its images into its album in the same transaction: whoever sees it ended
        (a client polling it) finds the album filled."""
        batch = Batch.objects.select_for_update().get(pk=self.pk)
        counts = dict(batch.jobs.values_list("status").annotate(n=Count("id")))
        batch.succeeded = counts.get(Status.SUCCEEDED, 0)
        batch.failed = counts.get(Status.FAILED, 0)
        active = counts.get(Status.QUEUED, 0) + counts.get(Status.RUNNING, 0)
        if batch.status in ACTIVE:
            if active:
                batch.status = Status.RUNNING if counts.get(Status.RUNNING) or \
                    batch.succeeded or batch.failed else Status.QUEUED
            else:
                if batch.succeeded == batch.total:
                    batch.status = Status.SUCCEEDED
                elif batch.succeeded:
                    batch.status = Status.PARTIAL
                elif counts.get(Status.CANCELLED):
                    batch.status = Status.CANCELLED
                else:
                    batch.status = Status.FAILED
                batch.finished_at = timezone.now()
        batch.save(update_fields=["succeeded", "failed", "status", "finished_at"])
        for field in ("succeeded", "failed", "status", "finished_at"):
            setattr(self, field, getattr(batch, field))
        if self.status not in ACTIVE:
            self.collect_images()
        return self

    def collect_images(self):
        """Gather the batch's images, in item order, into its album."""
        if self.album is None:
            return
        images = Image.objects.filter(jobs__batch=self).order_by("jobs__batch_position", "id")
        self.album.add_images(images, by=self.owner)

    @transaction.atomic
    def cancel(self):
        # The batch's row first, as release_held_jobs and refresh_status lock it: one order.
        Batch.objects.select_for_update().filter(pk=self.pk).first()
        for job in self.jobs.filter(status__in=ACTIVE):
            job.cancel(recount=False)
        Batch.objects.filter(pk=self.pk, status__in=ACTIVE).update(
            status=Status.CANCELLED, finished_at=timezone.now()
        )
        self.refresh_from_db()


class JobQuerySet(LeasedWorkQuerySet):
    def in_queue(self):
        """Queued jobs that count against max_queue: not held by their batch."""
        return self.filter(status=Status.QUEUED, held=False)

    def held(self):
        """Batch jobs waiting for room in the queue (limits.release_held_jobs)."""
        return self.filter(status=Status.QUEUED, held=True)

    def visible_to(self, user):
        if user.has_perm("generation.see_all_jobs"):
            return self
        return self.filter(owner=user)

    def shown(self):
        """Each job with what its API answer shows (generation.api.JobSerializer), in
        queries whose number does not grow with the jobs: the owner's name, each image's
        id (its URLs need nothing else) and the LoRAs with their names; the model is its
        id, on the job's own row. The images and LoRAs are read into lists (`shown_images`,
        `shown_loras`, which result_images and lora_links use): a prefetch into the
        managers builds a filtered queryset per job and relation, with or without rows,
        a fifth of a page of jobs' cost (bench/list_cost.py)."""
        return self.select_related("owner").prefetch_related(
            models.Prefetch("images", Image.objects.only("pk"), to_attr="shown_images"),
            models.Prefetch("joblora_set", to_attr="shown_loras"), "shown_loras__lora")


class Job(LeasedWork):
    """One generation request: a prompt and parameters, run by a worker. Its status,
    worker, lease and attempts are LeasedWork's (workers/models.py)."""

    noun = "job"
    worker_stopped = {"error_type": WORKER_STOPPED}

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="jobs")
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="jobs")
    batch_position = models.PositiveIntegerField(default=0)
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    model = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="jobs",
                              limit_choices_to={"kind": "base"})
    loras = models.ManyToManyField(ModelVersion, through="JobLora", related_name="lora_jobs",
                                   blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    steps = models.PositiveIntegerField()
    guidance_scale = models.FloatField()
    seed = models.BigIntegerField()
    scheduler = models.CharField(max_length=20)
    num_images = models.PositiveSmallIntegerField(default=1)
    clip_skip = models.PositiveSmallIntegerField(
        default=1, help_text="A1111's clip skip: 1 uses the text encoder's last layer.")
    # Image to image (GenerationParams): the picture it starts from and the mask, each an
    # image its owner could see when it was submitted (validation.py); kept when the
    # image is deleted as null, so the job still says it started from one.
    init_image = models.ForeignKey(Image, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    mask = models.ForeignKey(Image, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    strength = models.FloatField(default=0.75)
    mask_blur = models.PositiveSmallIntegerField(default=4)
    keep_unmasked = models.BooleanField(default=True)
    outpaint_left = models.PositiveIntegerField(default=0)
    outpaint_right = models.PositiveIntegerField(default=0)
    outpaint_up = models.PositiveIntegerField(default=0)
    outpaint_down = models.PositiveIntegerField(default=0)
    hires_scale = models.FloatField(default=0.0)
    hires_strength = models.FloatField(default=0.5)
    # What makes a picture larger (the hires fix's upscale, a source drawn at a larger
    # size): a registered upscaler model, or None for the plain resampler (Lanczos).
    upscaler = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="upscaler_jobs",
                                 limit_choices_to={"kind": "upscaler"})

    # LeasedWork's, with the batches' `partial` among the choices (a job is never partial).
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED,
                              db_index=True)
    queued_at = models.DateTimeField(default=timezone.now, db_index=True)
    error_type = models.CharField(max_length=100, blank=True,
                                  help_text="The class of the exception that failed the job.")
    owner_role = models.CharField(max_length=10, blank=True,
                                  help_text="The owner's role when the job was submitted.")
    held = models.BooleanField(
        default=False, help_text="A queued batch job that waits for room in the queue "
        "(max_queue) before a worker may pick it.")
    images = models.ManyToManyField(Image, blank=True, related_name="jobs")
    remix_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-queued_at", "-id"]
        permissions = [("see_all_jobs", "Can see and cancel every user's jobs")]
        indexes = [models.Index(fields=["status", "owner", "queued_at"]),
                   # A user's jobs, newest first (the list's order: core/pagination.py).
                   models.Index(fields=["owner", "queued_at", "id"], name="job_owner_newest")]

    def __str__(self):
        return f"Job #{self.pk}: {self.prompt[:40]}"

    def get_absolute_url(self):
        return reverse("job_detail", args=[self.pk])

    def result_images(self):
        """The images in the order they were made (read by `shown()` or prefetched when
        they were)."""
        images = getattr(self, "shown_images", None)
        return sorted(self.images.all() if images is None else images,
                      key=lambda image: image.pk)

    def lora_links(self):
        """The job's LoRAs and their weights (JobLora), as `shown()` read them, else the
        relation (prefetched or not)."""
        links = getattr(self, "shown_loras", None)
        return self.joblora_set.all() if links is None else links

    def lora_weights(self):
        return [(jl.lora, jl.weight) for jl in self.joblora_set.select_related("lora")]

    def generation_params(self):
        """The engine's GenerationParams of this job (its stored fields, as they are)."""
        return GenerationParams(**{name: getattr(self, name) for name in PARAMETERS})

    def batch_key(self):
        """Jobs with the same key can share one batched pipeline call: the same model,
        shape, LoRAs and source picture (one call draws from one)."""
        loras = tuple(sorted((jl.lora_id, jl.weight) for jl in self.joblora_set.all()))
        return (self.model_id, self.generation_params().shape(), self.negative_prompt, loras,
                self.init_image_id, self.mask_id, self.upscaler_id)

    @property
    def mode(self):
        """"txt2img", "img2img" or "inpaint" (a mask, or outpainting)."""
        if self.init_image_id is None:
            return "txt2img"
        return "inpaint" if self.mask_id or any(self.generation_params().outpaint()) \
            else "img2img"

    def params(self):
        """The parameters stored with each image (and shown as its metadata): the image to
        image ones only where they were used; the base's VAE override where it has one."""
        used = set(PARAMETERS) - set(IMAGE_DEFAULTS)
        if self.init_image_id:
            used |= {"strength", "mask_blur", "keep_unmasked"} | {
                f"outpaint_{side}" for side in OUTPAINT_SIDES}
        if self.hires_scale:
            used |= {"hires_scale", "hires_strength"}
        images = {name: getattr(self, f"{name}_id") for name in ("init_image", "mask")
                  if getattr(self, f"{name}_id")}
        upscaler = ({"upscaler": self.upscaler.name, "upscaler_hash": self.upscaler.short_hash}
                    if self.upscaler_id else {})
        return {
            "job": self.pk,
            **{name: getattr(self, name) for name in PARAMETERS
               if name != "num_images" and name in used},
            **images,
            "model": self.model.name,
            "model_hash": self.model.short_hash,
            **upscaler,
            **({"vae": self.model.vae.name, "vae_hash": self.model.vae.short_hash}
               if self.model.vae else {}),
            "loras": [{"name": lora.name, "hash": lora.short_hash, "weight": weight}
                      for lora, weight in self.lora_weights()],
        }

    @classmethod
    @transaction.atomic
    def create_from(cls, cleaned, *, owner, batch=None, batch_position=0, remix_of=None,
                    owner_role=None, held=False):
        """Create a queued job from parameters cleaned by validate_generation.

        `owner_role`: the owner's role, when the caller knows it (a batch asks once);
        `held`: a batch job that waits for room in the queue."""
        job = cls.new_from(cleaned, owner=owner, batch=batch, batch_position=batch_position,
                           remix_of=remix_of, owner_role=owner_role, held=held)
        job.save(force_insert=True)
        JobLora.objects.bulk_create(
            JobLora(job=job, lora=lora, weight=weight) for lora, weight in cleaned["loras"]
        )
        Counter.add("jobs_submitted", kind="single" if batch is None else "batch",
                    role=job.owner_role or "none")
        return job

    @classmethod
    def create_batch(cls, cleaned_items, *, owner, batch):
        """Create a batch's jobs, held, one per cleaned item in order: the jobs, their
        LoRAs and the counter in a few bulk INSERTs (a batch may hold a thousand)."""
        role = owner.role or ""
        jobs = cls.objects.bulk_create(
            [cls.new_from(cleaned, owner=owner, batch=batch, batch_position=position,
                          owner_role=role, held=True)
             for position, cleaned in enumerate(cleaned_items)],
            batch_size=BULK_ROWS)
        JobLora.objects.bulk_create(
            [JobLora(job=job, lora=lora, weight=weight)
             for job, cleaned in zip(jobs, cleaned_items, strict=True)
             for lora, weight in cleaned["loras"]],
            batch_size=BULK_ROWS)
        Counter.add("jobs_submitted", len(jobs), kind="batch", role=role or "none")
        return jobs

    @classmethod
    def new_from(cls, cleaned, *, owner, batch=None, batch_position=0, remix_of=None,
                 owner_role=None, held=False):
        """An unsaved job from parameters cleaned by validate_generation (create_from,
        create_batch)."""
        return cls(
            owner=owner,
            held=held,
            owner_role=(owner.role or "") if owner_role is None else owner_role,
            batch=batch,
            batch_position=batch_position,
            remix_of=remix_of,
            model=cleaned["model"],
            init_image=cleaned.get("init_image"),
            mask=cleaned.get("mask"),
            upscaler=cleaned.get("upscaler"),
            **{name: cleaned[name] for name in PARAMETERS if name in cleaned},
        )

    def same_parameters(self):
        """This job's parameters, for a remix: same seed, model, LoRAs and settings."""
        return {**{name: getattr(self, name) for name in PARAMETERS}, "model": self.model,
                "loras": self.lora_weights(), "init_image": self.init_image_id,
                "mask": self.mask_id, "upscaler": self.upscaler}

    # State changes beyond LeasedWork's (beat, requeue): each a conditional UPDATE that
    # the row's status, and the worker holding it, decide.

    def ended(self):
        """Count the end of the job (/metrics): by status, its run time when it ran (its
        last attempt's start, read again: another process may have started it) and, when
        it failed, the class of the error."""
        self.refresh_from_db(fields=["started_at"])
        Counter.add("jobs_finished", status=self.status)
        if self.status == Status.FAILED:
            Counter.add("generation_errors", error_type=self.error_type or "unknown")
        if self.started_at is not None:
            seconds = max((self.finished_at - self.started_at).total_seconds(), 0.0)
            Counter.add("job_duration_bucket", status=self.status,
                        le=duration_bucket(seconds))
            Counter.add("job_duration_milliseconds", round(seconds * 1000), status=self.status)

    def start(self, worker):
        return super().start(worker, progress=0.0, error_type="", held=False)

    def set_progress(self, progress):
        """Record progress (0..1) and renew the lease; False once the job was cancelled
        or given to another worker."""
        return self._transition([Status.RUNNING], progress=min(max(progress, 0.0), 1.0),
                                heartbeat_at=timezone.now())

    @transaction.atomic
    def finish(self, images):
        if not self._transition([Status.RUNNING], status=Status.SUCCEEDED, progress=1.0,
                                finished_at=timezone.now()):
            return False
        self.images.set(images)
        return True

    def fail(self, error, context=""):
        """End the job failed. `error`: the exception (its class, or its own `error_type`,
        is kept as error_type, which the metrics count) or a text; `context` says where it
        happened."""
        error_type = ""
        if isinstance(error, BaseException):
            error_type = getattr(error, "error_type", None) or error.__class__.__name__
        text = f"{error_type}: {error}" if error_type else str(error)
        if context:
            text = f"{context}: {text}"
        return super().fail(text, error_type=error_type)

    def cancel(self, recount=True):
        """Cancel a queued job, or ask a running one to stop at its next step; its batch
        recounts (`recount`: False when the batch itself is being cancelled)."""
        cancelled = super().cancel()
        if cancelled and recount and self.batch_id:
            self.batch.refresh_status()
        return cancelled

    def requeue(self):
        """Give a job whose worker died back to the queue (or fail it after
        IMAGINEER_JOB_MAX_ATTEMPTS starts). A job already past its time limit fails with
        error_type "timeout" instead: its worker was most likely stopped for running too
        long (the task timeout), and would be again."""
        if self.past_time_limit():
            self.fail(JobTimedOut(
                f"the job ran past its time limit of {settings.IMAGINEER_JOB_TIME_LIMIT} s "
                "(IMAGINEER_JOB_TIME_LIMIT) and its worker stopped"))
            return False
        return super().requeue(progress=0.0)

    def past_time_limit(self, now=None):
        """True when the job has run longer than IMAGINEER_JOB_TIME_LIMIT (0: no limit)
        since it started."""
        limit = settings.IMAGINEER_JOB_TIME_LIMIT
        return bool(limit and self.started_at
                    and (now or timezone.now()) - self.started_at > timedelta(seconds=limit))


class JobLora(WeightedLora):
    job = models.ForeignKey(Job, on_delete=models.CASCADE)

    class Meta:
        unique_together = [("job", "lora")]


SITE_SETTINGS_PK = 1
SIZE_RULE = f"Pixels: a multiple of {SIZE_MULTIPLE} from {SIZE[0]} to {SIZE[1]}."


def limit_rule(field, meaning):
    low, high = LIMITS[field]
    return f"{meaning} {low} to {high}."


class SiteSettings(models.Model):
    """The generation defaults and limits, changed at run time by admins: one row.

    Until an admin saves it the row does not exist and the values are the environment's
    (settings.py), so a fresh install behaves as configured; once saved, the row wins.
    Read it through `current()`: the values come from the shared cache (see CACHES in
    settings.py), and every save drops them, so web processes and workers all see a
    change at their next request.
    """

    CACHE_KEY = "generation.site-settings.v4"  # a new version when the fields change
    # A backstop: a reader that fetched the old row while a save committed may put it
    # back into the cache just after the save dropped it; it lives this long at most.
    CACHE_SECONDS = 60

    default_negative_prompt = models.TextField(
        blank=True, help_text=f"At most {PROMPT_MAX} characters.")
    default_width = models.IntegerField(help_text=SIZE_RULE)
    default_height = models.IntegerField(help_text=SIZE_RULE)
    default_steps = models.IntegerField(help_text=f"{STEPS[0]} to {STEPS[1]}.")
    default_guidance_scale = models.FloatField(help_text=f"{GUIDANCE[0]} to {GUIDANCE[1]}.")
    default_scheduler = models.CharField(max_length=20,
                                         help_text="One of " + ", ".join(SCHEDULERS) + ".")
    # The per-user limits by role: viewers' (these three) and editors' (editor_); admins
    # are exempt (limits.is_exempt).
    jobs_per_minute = models.IntegerField(help_text=limit_rule(
        "jobs_per_minute", "Single generation requests per viewer per minute."))
    batches_per_hour = models.IntegerField(help_text=limit_rule(
        "batches_per_hour", "Batch requests per viewer per hour."))
    max_active_jobs = models.IntegerField(help_text=limit_rule(
        "max_active_jobs", "Queued or running jobs per viewer; a batch counts once."))
    editor_jobs_per_minute = models.IntegerField(help_text=limit_rule(
        "editor_jobs_per_minute", "Single generation requests per editor per minute."))
    editor_batches_per_hour = models.IntegerField(help_text=limit_rule(
        "editor_batches_per_hour", "Batch requests per editor per hour."))
    editor_max_active_jobs = models.IntegerField(help_text=limit_rule(
        "editor_max_active_jobs", "Queued or running jobs per editor; a batch counts once."))
    max_queue = models.IntegerField(help_text=limit_rule(
        "max_queue", "Queued jobs in total; a single job past it is refused with 503, "
        "a batch's jobs wait for room."))
    max_batch = models.IntegerField(help_text=limit_rule(
        "max_batch", "Jobs of one batch that share a pipeline call in the worker."))
    nsfw_threshold = models.FloatField(help_text=(
        "The NSFW classifier's score from which an image is flagged NSFW (IMAGINEER_NSFW_"
        "MODEL; a flag set by hand wins): {} to {}. It applies to images scored after "
        "the change.").format(*NSFW_THRESHOLD))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "site settings"
        constraints = [models.CheckConstraint(condition=Q(id=SITE_SETTINGS_PK),
                                              name="one_site_settings")]

    def __str__(self):
        return "Site settings"

    def save(self, *args, **kwargs):
        self.pk = SITE_SETTINGS_PK
        super().save(*args, **kwargs)
        self.drop_cache()

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        self.drop_cache()
        return result

    @classmethod
    def field_names(cls):
        """The settings themselves: what the API and the admin show and change."""
        return [field.name for field in cls._meta.concrete_fields
                if field.name not in ("id", "updated_at")]

    @staticmethod
    def environment_values():
        """The values settings.py reads from the environment: the initial ones."""
        defaults = settings.IMAGINEER_GENERATION_DEFAULTS
        return {
            "default_negative_prompt": defaults["negative_prompt"],
            "default_width": defaults["width"],
            "default_height": defaults["height"],
            "default_steps": defaults["steps"],
            "default_guidance_scale": defaults["guidance_scale"],
            "default_scheduler": defaults["scheduler"],
            "jobs_per_minute": settings.IMAGINEER_JOBS_PER_MINUTE,
            "batches_per_hour": settings.IMAGINEER_BATCHES_PER_HOUR,
            "max_active_jobs": settings.IMAGINEER_MAX_ACTIVE_JOBS,
            # Editors' limits: unset in the environment, the viewers' values.
            **{f"editor_{name}": (getattr(settings, f"IMAGINEER_EDITOR_{name.upper()}")
                                  or getattr(settings, f"IMAGINEER_{name.upper()}"))
               for name in ("jobs_per_minute", "batches_per_hour", "max_active_jobs")},
            "max_queue": settings.IMAGINEER_MAX_QUEUE,
            "max_batch": settings.IMAGINEER_MAX_BATCH,
            "nsfw_threshold": settings.IMAGINEER_NSFW_THRESHOLD,
        }

    @classmethod
    def current(cls):
        """The settings in force, for reading (the one way every reader takes)."""
        stored = cache.get(cls.CACHE_KEY)
        if stored is None:
            # {} (no row yet) is cached too: the environment's values are read in each
            # process, so only what the database holds is shared.
            stored = (cls.objects.filter(pk=SITE_SETTINGS_PK)
                      .values(*cls.field_names(), "updated_at").first())
            stored = stored or {}
            cache.set(cls.CACHE_KEY, stored, cls.CACHE_SECONDS)
        return cls(pk=SITE_SETTINGS_PK, **{**cls.environment_values(), **stored})

    @classmethod
    def load(cls):
        """The row to change (the admin and the API): the saved one, or a new one holding
        the environment's values, which saving creates."""
        return (cls.objects.filter(pk=SITE_SETTINGS_PK).first()
                or cls(pk=SITE_SETTINGS_PK, **cls.environment_values()))

    @classmethod
    def drop_cache(cls):
        """Now, for this transaction's own reads; and again at commit, in case another
        process re-filled the cache from the old row before the new one was visible."""
        cache.delete(cls.CACHE_KEY)
        transaction.on_commit(lambda: cache.delete(cls.CACHE_KEY))

    def clean(self):
        cleaned = validate_site_settings({name: getattr(self, name)
                                          for name in self.field_names()})
        for name, value in cleaned.items():
            setattr(self, name, value)

    ROLE_LIMITS = ["jobs_per_minute", "batches_per_hour", "max_active_jobs"]

    def limits_for(self, role):
        """The per-user limits of a role: {jobs_per_minute, batches_per_hour,
        max_active_jobs}, the editors' for editors, the viewers' for anyone else."""
        prefix = "editor_" if role == "editor" else ""
        return {name: getattr(self, prefix + name) for name in self.ROLE_LIMITS}

    def generation_defaults(self):
        """The defaults of the generation parameters, as validate_generation fills them."""
        return {**settings.IMAGINEER_GENERATION_DEFAULTS,
                **{name.removeprefix("default_"): getattr(self, name)
                   for name in self.field_names() if name.startswith("default_")}}
