"""The sign-in and sign-up forms: allauth's, with healthorch's login throttle and the
organization's name."""

from __future__ import annotations

from typing import Any

from allauth.account import forms as allauth_forms
from django import forms

from apps.accounts import services
from apps.tenants import services as tenants


class LoginForm(allauth_forms.LoginForm):
    """Failed sign-ins count against the same throttles as the API's login (per client and
    email, per client, in a window that expires); past them the form refuses with its own
    error, before any password is checked, and the page answers 429 with Retry-After."""

    throttled_message = "Too many failed sign-in attempts. Try again in %(wait)s seconds."

    def clean(self) -> dict[str, Any]:
        email = (self.data.get("login") or "").strip()
        wait = tenants.login_retry_after(self.request, email)
        if wait is not None:
            self.request.login_retry_after = wait  # read by apps.accounts.views.login
            raise forms.ValidationError(
                self.throttled_message, code="throttled", params={"wait": wait}
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if email and self.data.get("password"):
                tenants.login_failure_record(self.request, email)
            raise
        if not self.errors:
            tenants.login_failures_clear(self.request, email)
        return cleaned


class SignupForm(allauth_forms.SignupForm):
    organization = forms.CharField(
        label="Organization name",
        max_length=120,
        required=False,
        help_text="Your team or company. You can rename it later. Not needed if you were invited.",
        widget=forms.TextInput(attrs={"autocomplete": "organization"}),
    )

    def save(self, request: Any) -> Any:
        user = super().save(request)
        # The organization is made at the first sign-in, once the email is verified.
        name = self.cleaned_data.get("organization", "").strip()
        if name:
            request.session[services.SIGNUP_ORG_NAME] = name
        return user
