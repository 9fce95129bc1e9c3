from __future__ import annotations

from django import forms
from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from fer_site.models import ApiKey, Scope

# rest_framework_api_key registers its own key model, which Attune does not use.
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=ApiKey._meta.get_field("scopes").help_text,
    )

    class Meta:
        model = ApiKey
        fields = ("name", "scopes", "throttle_rate", "expiry_date", "revoked")


@admin.register(ApiKey)
class ApiKeyAdmin(APIKeyModelAdmin):
    """Create keys (the key is shown once, in a message), give them scopes and rates, revoke them."""

    form = ApiKeyForm
    list_display = ("prefix", "name", "scope_list", "throttle_rate", "created", "expiry_date", "revoked")
    list_filter = ("revoked", "created")

    @admin.display(description="Scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes) or "—"
