"""Recounts the running usage totals of every quota and host from the instance rows and corrects those that differ."""

from django.core.management.base import BaseCommand

from compute.services.usage import usage_totals_repair


class Command(BaseCommand):
    help = "Recount what tenants and hosts hold from the instance rows; correct totals that differ."

    def handle(self, *args, **options) -> None:
        fixed = usage_totals_repair()
        for line in fixed:
            self.stdout.write(f"corrected {line}")
        if not fixed:
            self.stdout.write("Every total matches the instance rows.")
