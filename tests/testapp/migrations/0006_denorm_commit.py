import django.db.models.deletion
import django_scalekit.denorm
from django.db import migrations, models

from django_scalekit.denorm import CounterTrigger


class Migration(migrations.Migration):

    dependencies = [
        ('testapp', '0005_denorm_deferred_trigger'),
    ]

    operations = [
        migrations.CreateModel(
            name='Forum',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=50)),
                ('topic_count', django_scalekit.denorm.CounterField('topics', filter=models.Q(('open', True)), mode='commit')),
                ('topics_total', django_scalekit.denorm.CounterField('topics', mode='commit')),
            ],
        ),
        migrations.CreateModel(
            name='Topic',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('open', models.BooleanField(default=False)),
                ('title', models.CharField(blank=True, max_length=100)),
                ('forum', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='topics', to='testapp.forum')),
            ],
        ),
        CounterTrigger('forum', 'topic_count'),
        CounterTrigger('forum', 'topics_total'),
    ]
