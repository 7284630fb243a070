"""Dashboard forms for storage: they check shape and ownership; the services decide the rest."""

from django import forms

from compute.network.forms import NAME_HELP, RegionChoiceMixin, RegionField
from compute.storage.models import MAX_VOLUME_GIB, MIN_VOLUME_GIB, Snapshot, SnapshotState

SIZE_HELP = f"{MIN_VOLUME_GIB} to {MAX_VOLUME_GIB:,} GiB."


def _size_field(**kwargs) -> forms.IntegerField:
    kwargs.setdefault("label", "Size (GiB)")
    kwargs.setdefault("help_text", SIZE_HELP)
    field = forms.IntegerField(min_value=MIN_VOLUME_GIB, max_value=MAX_VOLUME_GIB, **kwargs)
    field.widget.attrs.update({"inputmode": "numeric", "step": "1"})
    return field


class VolumeForm(RegionChoiceMixin, forms.Form):
    name = forms.CharField(label="Name", max_length=63, help_text=NAME_HELP)
    size_gib = _size_field(required=False, initial=100)
    snapshot = forms.ModelChoiceField(
        label="Data",
        queryset=Snapshot.objects.none(),
        required=False,
        empty_label="Empty (you format it in the machine)",
        help_text="Or a copy of one of your snapshots: at least its size.",
    )
    region = RegionField(label="Region", help_text="It attaches to machines of this region.")

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["snapshot"].queryset = Snapshot.objects.for_tenant(tenant).filter(state=SnapshotState.AVAILABLE)
        self.fields["snapshot"].label_from_instance = lambda snap: f"Snapshot {snap.name} ({snap.size_gib} GiB)"

    def clean(self):
        data = super().clean()
        if data.get("size_gib") is None and data.get("snapshot") is None and "size_gib" not in self.errors:
            self.add_error("size_gib", "Give the volume a size.")
        return data


class AttachForm(forms.Form):
    instance = forms.ModelChoiceField(label="Machine", queryset=None, empty_label=None)

    def __init__(self, *args, instances, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["instance"].queryset = instances


class ExtendForm(forms.Form):
    size_gib = _size_field(label="New size (GiB)", help_text="Larger than now: volumes only grow.")


class SnapshotForm(forms.Form):
    name = forms.CharField(label="Snapshot name", max_length=63, help_text=NAME_HELP)


class SnapshotVolumeForm(forms.Form):
    name = forms.CharField(label="New volume's name", max_length=63, help_text=NAME_HELP)
    size_gib = _size_field(required=False, help_text="At least the snapshot's size (left empty: exactly it).")
