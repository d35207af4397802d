"""Django: the request's user and request on every transaction it opens,
and auth events through Django's auth signals.

Add ``"auditsql.integrations.django"`` to ``INSTALLED_APPS`` (for the auth
events) and ``"auditsql.integrations.django.middleware.AuditContextMiddleware"``
to ``MIDDLEWARE`` after ``AuthenticationMiddleware``. Settings, all
optional, in ``settings.AUDITSQL``: see ``auditsql.integrations.django.conf``.
"""
