"""`manage.py embeddings_pgvector_backfill`: install pgvector's table where possible and copy into
it the vectors it is missing (rows stored before pgvector was installed)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from embeddings import pgvector


class Command(BaseCommand):
    help = (
        "Create the pgvector table and HNSW index when the PostgreSQL server has the `vector` extension, and "
        "copy the 384-dimension embeddings it does not hold yet. Restart the web processes afterwards so "
        "EMBEDDINGS_VECTOR_BACKEND=auto picks it up."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count the rows to copy; create and change nothing.")
        parser.add_argument("--batch-size", type=int, default=1000, help="Rows per transaction (default 1000).")

    def handle(self, *args: Any, dry_run: bool, batch_size: int, verbosity: int, **options: Any) -> None:
        ready, rows = pgvector.backfill(dry_run=dry_run, batch_size=max(batch_size, 1))
        if verbosity < 1:
            return
        if not ready:
            self.stdout.write(
                "pgvector is not available on this database (SQLite, or PostgreSQL without the `vector` "
                "extension): search stays on the numpy index. Nothing changed."
            )
        elif dry_run:
            self.stdout.write(f"Dry run: {rows} embedding(s) would be copied to pgvector; nothing changed.")
        else:
            self.stdout.write(self.style.SUCCESS(f"Copied {rows} embedding(s) to pgvector."))
