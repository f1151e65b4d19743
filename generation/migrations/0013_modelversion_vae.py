# A VAE override per base model (models of kind "vae", a base's `vae`) and the size a
# base draws at (`native_size`, its sizes' rule).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('generation', '0012_model_usable_by'),
    ]

    operations = [
        migrations.AlterField(
            model_name='modelversion',
            name='kind',
            field=models.CharField(choices=[('base', 'Base model'), ('lora', 'LoRA'), ('vae', 'VAE')], max_length=8),
        ),
        migrations.AddField(
            model_name='modelversion',
            name='native_size',
            field=models.PositiveIntegerField(blank=True, editable=False, help_text="The side in pixels a base's UNet draws at, read from its configs at registration (empty: its family's); its sizes follow (rules.size_rule).", null=True),
        ),
        migrations.AddField(
            model_name='modelversion',
            name='vae',
            field=models.ForeignKey(blank=True, help_text="A base model's VAE override: a registered VAE of its family that the worker loads in place of the base's own (empty: its own). A VAE retired later stays in use by the bases that name it; one deleted leaves them their own.", limit_choices_to={'kind': 'vae'}, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='bases_using', to='generation.modelversion'),
        ),
    ]
