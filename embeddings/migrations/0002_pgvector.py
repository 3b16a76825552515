"""The pgvector table for search in PostgreSQL, where the server has the `vector` extension.

On SQLite and on PostgreSQL without pgvector this migrates to nothing but the (unmanaged) model
state; search then stays on the numpy index. Where the extension is available it is installed,
the table and its HNSW index are created, and the vectors of existing rows are copied in.
`manage.py embeddings_pgvector_backfill` does the same later, e.g. after installing pgvector."""

import django.db.models.deletion
import pgvector.django.vector
from django.db import migrations, models


def install_and_backfill(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    from embeddings import pgvector as backend

    backend.backfill()


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TABLE IF EXISTS embeddings_pgvector")


class Migration(migrations.Migration):
    dependencies = [
        ("embeddings", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="PgVector",
            fields=[
                (
                    "embedding",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="embeddings.embedding",
                    ),
                ),
                ("vector", pgvector.django.vector.VectorField(dimensions=384)),
            ],
            options={
                "db_table": "embeddings_pgvector",
                "managed": False,
            },
        ),
        migrations.RunPython(install_and_backfill, drop, elidable=True),
    ]
