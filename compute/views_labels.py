"""Editing the labels of any labelled resource from the dashboard: one page for instances, SSH keys, networks,
firewalls and public addresses (each resource's page and list link to it)."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.views.generic import DetailView

from compute.models import Instance, SSHKey
from compute.network.models import Firewall, Network, PublicIP
from compute.services import resource_labels_set
from portal.errors import ServiceError
from portal.viewmixins import safe_next
from tenants.labels import KEY_RULE, MAX_LABELS, MAX_VALUE_LENGTH, labels_parse_text, labels_text
from tenants.scoping import TenantScopedMixin

# The URL's kind → (model, how pages name it, where its page or list is).
LABELLED = {
    "instance": (Instance, "machine", lambda obj: reverse("compute:instance-detail", kwargs={"pk": obj.pk})),
    "ssh-key": (SSHKey, "SSH key", lambda obj: reverse("compute:sshkey-list")),
    "network": (Network, "network", lambda obj: reverse("network:network-detail", kwargs={"pk": obj.pk})),
    "firewall": (Firewall, "firewall", lambda obj: reverse("network:firewall-detail", kwargs={"pk": obj.pk})),
    "ip": (PublicIP, "public address", lambda obj: reverse("network:ip-list")),
}


class LabelsForm(forms.Form):
    labels = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "mono"}),
        help_text=f"One key=value per line. Keys: {KEY_RULE}; values up to {MAX_VALUE_LENGTH} characters; "
        f"at most {MAX_LABELS} labels.",
    )

    def clean_labels(self):
        try:
            return labels_parse_text(self.cleaned_data["labels"])
        except ValidationError as error:
            raise forms.ValidationError(error.messages) from None


class LabelsEditView(TenantScopedMixin, DetailView):
    """The labels of one resource of `kind` (a key of LABELLED), as key=value lines."""

    template_name = "compute/labels_edit.html"
    context_object_name = "obj"
    kind = ""

    @classmethod
    def of(cls, kind: str) -> type["LabelsEditView"]:
        return type(f"{LABELLED[kind][0].__name__}LabelsView", (cls,), {"kind": kind, "model": LABELLED[kind][0]})

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        _model, noun, back = LABELLED[self.kind]
        context.update(noun=noun, back=safe_next(self.request, back(self.object)))
        context.setdefault("form", LabelsForm(initial={"labels": labels_text(self.object.labels)}))
        return context

    def post(self, request, *args, **kwargs):
        self.object = obj = self.get_object()
        form = LabelsForm(request.POST)
        if form.is_valid():
            try:
                resource_labels_set(resource=obj, user=request.user, labels=form.cleaned_data["labels"])
            except ServiceError as error:
                form.add_error("labels", error.message)
            else:
                messages.success(request, "The labels were saved.")
                return HttpResponseRedirect(safe_next(request, LABELLED[self.kind][2](obj)))
        return self.render_to_response(self.get_context_data(form=form), status=400)
