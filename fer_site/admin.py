from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers
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
    """Create keys (the key is shown once, on the page that answers the form), give them scopes, revoke them.

    The library's admin puts a new key in a Django message, which the default message storage keeps in a
    (signed, not encrypted) cookie until it is shown. Here the key goes straight into the response instead,
    which no cache may keep.
    """

    form = ApiKeyForm
    list_display = ("prefix", "name", "scope_list", "throttle_rate", "created", "expiry_date", "revoked")
    list_filter = ("revoked", "created")

    @admin.display(description="Scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes) or "—"

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        request.attune_new_api_key = self.model.objects.assign_key(obj)
        obj.save()

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue=None) -> HttpResponse:
        key = getattr(request, "attune_new_api_key", None)
        if key is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": obj,
            "key": key,
            "title": f"API key {obj.name} created",
        }
        response = TemplateResponse(request, "fer_site/admin/api_key_created.html", context)
        add_never_cache_headers(response)
        return response
