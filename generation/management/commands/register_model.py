from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from generation.models import Family, ModelVersion


class Command(BaseCommand):
    help = (
        "Register a base model or a LoRA by Hugging Face hub id or local path, e.g.\n"
        "  manage.py register_model 'SD 1.5' --source runwayml/stable-diffusion-v1-5 --default\n"
        "  manage.py register_model inkwash --kind lora --source /models/inkwash.safetensors"
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--source", required=True, help="hub id, folder or .safetensors")
        parser.add_argument("--kind", choices=ModelVersion.Kind.values, default="base")
        parser.add_argument("--family", choices=Family.values, default=Family.SD15)
        parser.add_argument("--model-version", default="")
        parser.add_argument("--trigger-words", default="")
        parser.add_argument("--description", default="")
        parser.add_argument("--default", action="store_true", help="make it the default base")

    def handle(self, *args, **options):
        try:
            model = ModelVersion.from_source(
                name=options["name"], kind=options["kind"], source=options["source"],
                family=options["family"], version=options["model_version"],
                trigger_words=options["trigger_words"], description=options["description"],
            ).register()
            if options["default"]:
                model.make_default()
        except ValidationError as exc:
            raise CommandError("; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()
            )) from exc
        self.stdout.write(self.style.SUCCESS(
            f"Registered {model.get_kind_display()} {model} (id {model.pk}, {model.family})"
            + (", the default" if model.is_default else "") + "."
        ))
