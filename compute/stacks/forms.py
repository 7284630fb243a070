from django import forms

from compute.stacks.document import MAX_DOCUMENT_BYTES


class StackDocumentForm(forms.Form):
    document = forms.CharField(
        label="Stack document",
        required=False,
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "mono", "wrap": "off"}),
        help_text="YAML or JSON. Its JSON Schema is at /api/v1/stacks/schema/.",
    )
    upload = forms.FileField(label="…or upload a file", required=False, help_text="A .yaml, .yml or .json file.")

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("upload")
        if upload is not None:
            if upload.size > MAX_DOCUMENT_BYTES:
                raise forms.ValidationError(f"The file is larger than {MAX_DOCUMENT_BYTES // 1024} KiB.")
            try:
                cleaned["document"] = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError("The file is not UTF-8 text.") from None
        if not (cleaned.get("document") or "").strip():
            raise forms.ValidationError("Paste a document or upload one.")
        return cleaned


class StackDestroyForm(forms.Form):
    confirm = forms.CharField(label="Type the stack's name to confirm")

    def __init__(self, *args, stack_name: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.stack_name = stack_name

    def clean_confirm(self):
        value = self.cleaned_data["confirm"].strip()
        if value != self.stack_name:
            raise forms.ValidationError(f"Type {self.stack_name} exactly.")
        return value
