from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('training', '0004_list_indexes'),
    ]

    operations = [
        migrations.AddField(
            model_name='trainingrun',
            name='train_convolutions',
            field=models.BooleanField(default=False, help_text="Also train the UNet's ResNet convolutions (conv1, conv2), not only its attention: what a new shape needs."),
        ),
    ]
