from django.conf import settings
from django.db import migrations, models


def threshold_from_environment(apps, schema_editor):
    """A saved row starts with the environment's threshold (IMAGINEER_NSFW_THRESHOLD)."""
    apps.get_model("generation", "SiteSettings").objects.update(
        nsfw_threshold=settings.IMAGINEER_NSFW_THRESHOLD
    )


class Migration(migrations.Migration):
    dependencies = [
        ("generation", "0013_modelversion_vae"),
    ]

    operations = [
        migrations.AddField(
            model_name="sitesettings",
            name="nsfw_threshold",
            field=models.FloatField(
                default=0.8,
                help_text="The NSFW classifier's score from which an image is flagged NSFW (IMAGINEER_NSFW_MODEL; a flag set by hand wins): 0.0 to 1.0. It applies to images scored after the change.",
            ),
            preserve_default=False,
        ),
        migrations.RunPython(threshold_from_environment, migrations.RunPython.noop),
    ]
