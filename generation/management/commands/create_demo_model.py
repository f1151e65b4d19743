from django.conf import settings
from django.core.management.base import BaseCommand

from generation.engine.demo import install_demo_model
from generation.models import Family, ModelVersion

DEMO_NAME = "demo"


class Command(BaseCommand):
    help = (
        "Install the demo model (a tiny Stable Diffusion pipeline trained on a world of "
        "coloured shapes, committed with the code: no downloads, no training) under "
        "IMAGINEER_MODEL_DIR/demo and register it as the default base model. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--if-no-base", action="store_true",
                            help="Do nothing when any base model is registered already.")

    def handle(self, *args, if_no_base=False, **options):
        if if_no_base and ModelVersion.objects.bases().exists():
            self.stdout.write("A base model is registered already.")
            return
        directory = settings.IMAGINEER_MODEL_DIR / DEMO_NAME
        if not (directory / "model_index.json").is_file():
            install_demo_model(directory)
            self.stdout.write(f"Installed the demo model in {directory}.")
        model = ModelVersion.objects.bases().filter(source=str(directory)).first()
        if model is None:
            model = ModelVersion.from_source(
                name=DEMO_NAME, kind=ModelVersion.Kind.BASE, source=str(directory),
                family=Family.SD15, version="1",
                description="Tiny pipeline for tests and demos, trained on coloured "
                "shapes: 'a small red circle on a blue background, top'. 64 px shapes, "
                "not photographs.",
            ).register()
            self.stdout.write(self.style.SUCCESS(f"Registered {model} (id {model.pk})."))
        if ModelVersion.objects.default_base() is None:
            model.make_default()
        self.stdout.write(f"The default base model is {ModelVersion.objects.default_base()}.")
