"""Admin actions that call services: one loop that reports each refusal, and a confirmation step before acting.

Operators change state only through the services, never by editing fields, so the event logs, billing and the
workers see what they did.
"""

from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.contrib.admin import ModelAdmin, helpers
from django.contrib.admin import action as admin_action
from django.template.response import TemplateResponse

from portal.errors import ServiceError


class AppendOnlyMixin:
    """Rows of history: added (through a service), never changed or deleted."""

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdminMixin(AppendOnlyMixin):
    """Rows written by services only: operators read them and act through admin actions."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def run_service_action(
    modeladmin, request, queryset, *, call: Callable, done_label: str, note: str = "", report: Callable | None = None
) -> int:
    """Calls `call(obj)` for each selected object; reports how many succeeded and every refusal by name.

    Each success is recorded in Django's admin log (who, what, on which object, with the note); the services record
    it in the affected organisation's own log. `report(result)` may return a line to show for one result.
    """
    done = 0
    for obj in queryset:
        try:
            result = call(obj)
        except ServiceError as error:
            modeladmin.message_user(request, f"{obj}: {error.message}", messages.WARNING)
        else:
            done += 1
            # Django's log only: the service has recorded it in the organisation's own logs already.
            ModelAdmin.log_change(modeladmin, request, obj, f"{done_label}." + (f" {note}" if note else ""))
            if report is not None and (line := report(result)):
                modeladmin.message_user(request, line, messages.INFO)
    if done:
        modeladmin.message_user(request, f"{done_label}: {done} done.", messages.SUCCESS)
    return done


def service_action(
    call: Callable,
    *,
    name: str,
    description: str,
    done_label: str,
    permission: str | None = "change",
    select: Callable | None = None,
):
    """An admin action that calls `call(obj, user)` (a service) on each selected object, through run_service_action.

    `select(queryset)` narrows the selection to the objects the service applies to (the first one, those with work
    in progress…); `permission` None offers the action to whoever may view the list.
    """

    def action(modeladmin, request, queryset):
        run_service_action(
            modeladmin,
            request,
            select(queryset) if select is not None else queryset,
            call=lambda obj: call(obj, request.user),
            done_label=done_label,
        )

    action.__name__ = name
    return admin_action(description=description, permissions=[permission] if permission else None)(action)


class NoteForm(forms.Form):
    note = forms.CharField(
        label="Reason (shown to the organisation)", max_length=500, required=False, widget=forms.Textarea({"rows": 3})
    )


class RequiredNoteForm(NoteForm):
    note = forms.CharField(
        label="Reason (shown to the organisation)", max_length=500, widget=forms.Textarea({"rows": 3})
    )


def confirmed(modeladmin, request, queryset, *, title: str, explanation: str, form_class=NoteForm):
    """The confirmation step of an admin action: a page listing the objects, with a reason (or `form_class`'s
    fields).

    Returns the cleaned form once the operator confirmed, or the page (a TemplateResponse) to show first.
    """
    form = form_class(request.POST if request.POST.get("confirmed") else None)
    if form.is_bound and form.is_valid():
        return form.cleaned_data
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "explanation": explanation,
        "objects": list(queryset),
        "form": form,
        "opts": modeladmin.model._meta,
        "action": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    return TemplateResponse(request, "admin/confirm_service_action.html", context)


def is_response(value) -> bool:
    return isinstance(value, TemplateResponse)


def confirmed_service_action(
    call: Callable,
    *,
    name: str,
    description: str,
    title: str,
    explanation: str,
    done_label: str | Callable[[dict], str],
    form_class=NoteForm,
    permission: str = "change",
    report: Callable | None = None,
    select: Callable | None = None,
):
    """An admin action that asks for confirmation (see `confirmed`), then calls `call(obj, user, confirmation)` (a
    service) on each selected object through run_service_action; the note becomes the admin log's note.

    `done_label` may be a function of the confirmation (a label naming the amount entered); `select` narrows the
    selection as service_action's does.
    """

    def action(modeladmin, request, queryset):
        if select is not None:
            queryset = select(queryset)
        confirmation = confirmed(
            modeladmin, request, queryset, title=title, explanation=explanation, form_class=form_class
        )
        if is_response(confirmation):
            return confirmation
        run_service_action(
            modeladmin,
            request,
            queryset,
            call=lambda obj: call(obj, request.user, confirmation),
            done_label=done_label(confirmation) if callable(done_label) else done_label,
            note=confirmation["note"],
            report=report,
        )
        return None

    action.__name__ = name
    return admin_action(description=description, permissions=[permission])(action)


def extend_registered(model, extend: Callable) -> None:
    """Lets a higher app add to a lower app's admin page (compute and billing add their parts to the tenant's) without
    the lower app importing it: `extend(base_admin_class)` returns the subclass to register instead."""
    from django.contrib import admin

    base = type(admin.site._registry[model])
    admin.site.unregister(model)
    admin.site.register(model, extend(base))
