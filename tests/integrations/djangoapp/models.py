from __future__ import annotations

from django.db import models


class Note(models.Model):
    author = models.TextField(null=True)
    request = models.TextField(null=True)
    body = models.TextField(null=True)

    class Meta:
        app_label = "djangoapp"
        db_table = "notes"
        managed = False
