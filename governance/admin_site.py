"""The portal's admin site: Django's, except that a staff member's own password change goes through
``governance.services.user_set_password`` (audited) rather than straight to ``User.save``.

``governance.admin_config.PortalAdminConfig`` stands in ``INSTALLED_APPS`` for
``django.contrib.admin`` and names this site as the default (Django's documented way to replace
it), so ``django.contrib.admin.site`` and every ``@admin.register`` use it.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.contrib.admin.forms import AdminPasswordChangeForm
from django.contrib.auth.views import PasswordChangeView
from django.http import HttpRequest, HttpResponseBase
from django.urls import reverse

from governance import services


class OwnPasswordChangeForm(AdminPasswordChangeForm):
    """Old password, new password twice (Django's form); saved through the audited service."""

    def save(self, commit: bool = True) -> Any:
        if not commit:
            raise ValueError("A password is only ever saved through user_set_password.")
        # The view keeps the session signed in with ``self.user``'s new hash.
        self.user = services.user_set_password(
            actor=self.user,
            user=self.user,
            raw_password=self.cleaned_data["new_password1"],
            reason="Own password changed in the admin",
        )
        return self.user


class PortalAdminSite(AdminSite):
    site_header = "AI Governance Portal administration"
    site_title = "AI Governance Portal admin"

    # django-stubs says a TemplateResponse, but Django's own method returns the view's response,
    # which is a redirect once the password is changed.
    def password_change(  # type: ignore[override]
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponseBase:
        """Django's own-password view with the audited form (the rest as in ``AdminSite``)."""
        defaults: dict[str, Any] = {
            "form_class": OwnPasswordChangeForm,
            "success_url": reverse("admin:password_change_done", current_app=self.name),
            "extra_context": {**self.each_context(request), **(extra_context or {})},
        }
        if self.password_change_template is not None:
            defaults["template_name"] = self.password_change_template
        request.current_app = self.name
        return PasswordChangeView.as_view(**defaults)(request)
