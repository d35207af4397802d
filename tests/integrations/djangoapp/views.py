from __future__ import annotations

import json

from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from auditsql.integrations.context import bind, current
from tests.integrations.djangoapp.models import Note


class Refused(Exception):
    pass


def _author(request: HttpRequest) -> str | None:
    return str(request.user.pk) if request.user.is_authenticated else None


def notes(request: HttpRequest) -> HttpResponse:
    """One write on its own (autocommit without ATOMIC_REQUESTS), then an
    atomic block with a nested one under another actor; ``fail`` raises at
    the end of the block."""
    data = json.loads(request.body or b"{}")
    context = current()
    assert context is not None
    rid = context.request_id
    author = _author(request)
    Note.objects.create(author=author, request=rid, body="alone")
    with transaction.atomic():
        note = Note.objects.create(author=author, request=rid, body="x")
        if data.get("nested"):
            inner = f"{author}-inner"
            with bind(actor_id=inner), transaction.atomic():
                Note.objects.create(author=inner, request=rid, body="inner")
        Note.objects.filter(pk=note.pk).update(body="y")
        if data.get("fail"):
            raise Refused("refused")
    return JsonResponse({"request_id": rid})


def login_view(request: HttpRequest) -> HttpResponse:
    data = json.loads(request.body)
    user = authenticate(request, username=data["username"], password=data["password"])
    if user is None:
        return HttpResponse(status=401)
    login(request, user)
    # Written after the login, in the same request: carries the user.
    Note.objects.create(author=_author(request), request=current().request_id, body="login")
    return HttpResponse(status=204)


def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    Note.objects.create(author=None, request=current().request_id, body="logout")
    return HttpResponse(status=204)


def password_view(request: HttpRequest) -> HttpResponse:
    data = json.loads(request.body)
    request.user.set_password(data["password"])
    request.user.save()
    update_session_auth_hash(request, request.user)
    return HttpResponse(status=204)
