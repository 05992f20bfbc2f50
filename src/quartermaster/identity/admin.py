"""Back office for identity: users and roles (written through commands), devices (revoked
through a command), and the back-office login, rate-limited like the API's."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from quartermaster.core.admin import PolicyAdmin, ReadOnlyAdmin, allowed, back_office_actor
from quartermaster.core.commands import Command, execute
from quartermaster.core.errors import DomainError, RateLimited
from quartermaster.core.http import client_ip
from quartermaster.core.types import Context
from quartermaster.identity.models import Device, User
from quartermaster.identity.ratelimits import LoginGuard
from quartermaster.identity.services import CreateUser, RevokeDevice, UpdateUser

admin.site.unregister(Group)  # roles, not groups, decide what a user may do


class RateLimitedLoginForm(AdminAuthenticationForm):
    """The admin login is guarded like the API's: lockout per (username, address) with
    back-off, and failures per address."""

    def clean(self) -> dict[str, Any]:
        address = client_ip(self.request) if self.request is not None else "unknown"
        guard = LoginGuard.of(str(self.data.get("username") or ""), address)
        try:
            guard.refuse_if_locked()
        except RateLimited as error:
            raise ValidationError(
                f"Too many failed logins. Try again in {error.retry_after_s} seconds."
            ) from error
        try:
            cleaned = super().clean()
        except ValidationError:
            guard.failed()
            raise
        guard.succeeded()
        return cleaned


admin.site.login_form = RateLimitedLoginForm


def run(request: HttpRequest, command: Command) -> Any:
    """Execute `command` as the signed-in user; a refusal becomes a form-level error."""
    actor = back_office_actor(request)
    if actor is None:
        raise ValidationError("not signed in")
    response = execute(command, Context(actor=actor))
    if response.status >= 400:
        raise DomainErrorInForm(response.body)
    return response.body


class DomainErrorInForm(ValidationError):
    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(str(body.get("error", "refused")))
        self.body = body


class UserAddForm(forms.ModelForm):
    password = forms.CharField(widget=forms.PasswordInput, strip=False)

    class Meta:
        model = User
        fields = ("username", "role", "locations")


class UserChangeForm(forms.ModelForm):
    # An admin's reset, as PATCH /api/v1/users/{id} {"password"}: every session of the user ends.
    new_password = forms.CharField(
        widget=forms.PasswordInput,
        strip=False,
        required=False,
        help_text="Leave empty to keep the password. A reset signs the user out everywhere.",
    )

    class Meta:
        model = User
        fields = ("role", "locations", "is_active")


def _command_for(form: forms.ModelForm, obj: User | None) -> Command:
    data = form.cleaned_data
    location_ids = tuple(location.pk for location in data.get("locations") or ())
    if obj is None:
        return CreateUser(
            username=data["username"],
            password=data["password"],
            role=data["role"],
            locations=location_ids,
        )
    return UpdateUser(
        user=obj.pk,
        role=data["role"],
        locations=location_ids,
        is_active=data["is_active"],
        password=data.get("new_password") or None,
    )


@admin.register(User)
class UserAdmin(PolicyAdmin):
    """Users and roles. Admins add and change them (through CreateUser / UpdateUser); managers
    see them. Deactivate instead of deleting: the audit chain names users forever."""

    read_action = "user.read"
    add_action = "user.create"
    change_action = "user.update"
    list_display = ("username", "role", "is_active", "last_login")
    list_filter = ("role", "is_active")
    search_fields = ("username",)
    ordering = ("username",)
    filter_horizontal = ("locations",)

    def get_form(
        self, request: HttpRequest, obj: Model | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        kwargs["form"] = UserChangeForm if obj is not None else UserAddForm
        form_class = super().get_form(request, obj, change=change, **kwargs)

        class CheckedForm(form_class):  # type: ignore[valid-type,misc]
            """Runs the command's pure invariants while the form can still show errors."""

            def clean(self) -> dict[str, Any]:
                cleaned: dict[str, Any] = super().clean()
                if not self.errors:
                    try:
                        _command_for(self, obj if isinstance(obj, User) else None).validated()
                    except DomainError as error:
                        for field, message in (error.fields or {"__all__": error.message}).items():
                            self.add_error(field if field in self.fields else None, message)
                return cleaned

        return CheckedForm

    def get_fieldsets(self, request: HttpRequest, obj: Model | None = None) -> Any:
        if obj is None:
            return [(None, {"fields": ("username", "password", "role", "locations")})]
        return [(None, {"fields": ("role", "locations", "is_active", "new_password")})]

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        assert isinstance(obj, User)
        body = run(request, _command_for(form, obj if change else None))
        saved = User.objects.get(pk=body["id"])
        obj.pk = saved.pk
        obj._state.adding = False
        obj._state.db = saved._state.db

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """The command already set the locations."""


@admin.register(Device)
class DeviceAdmin(ReadOnlyAdmin):
    """Devices and when they were last seen; admins revoke them (RevokeDevice), nothing else."""

    read_action = "device.read"
    list_display = ("device_id", "user", "first_seen_at", "last_seen_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("device_id", "user__username")
    ordering = ("-last_seen_at",)
    actions = ["revoke_devices"]

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return allowed(request, "device.revoke")

    @admin.action(
        description="Revoke selected devices (their tokens stop working)", permissions=["revoke"]
    )
    def revoke_devices(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        revoked = 0
        for device_id in queryset.values_list("device_id", flat=True):
            try:
                run(request, RevokeDevice(device_id=device_id))
                revoked += 1
            except ValidationError as error:
                self.message_user(request, f"{device_id}: {error.message}", messages.ERROR)
        devices = "device" if revoked == 1 else "devices"
        self.message_user(request, f"Revoked {revoked} {devices}.", messages.SUCCESS)
