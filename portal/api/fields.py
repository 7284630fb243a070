"""Serializer fields that accept only what the schema promises."""

from rest_framework import serializers

from tenants.labels import MAX_VALUE_LENGTH, label_problems


class StrictCharField(serializers.CharField):
    """A JSON string only: DRF's CharField would turn 0 or true into "0"/"True" and let them through."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only: DRF's BooleanField would take 0, 1, "yes" or "off" too."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class LabelsField(serializers.DictField):
    """A resource's labels: an object of `key: value` strings (keys lower-case, at most 32 labels)."""

    default_error_messages = {"not_a_dict": "Labels are an object of key → value strings."}

    def __init__(self, **kwargs):
        kwargs.setdefault("child", StrictCharField(allow_blank=True, max_length=MAX_VALUE_LENGTH))
        kwargs.setdefault(
            "help_text",
            "`key: value` strings: keys 1 to 63 lower-case letters, digits and `. _ / -`; values up to 63 characters; "
            "at most 32. Filter lists with `?label=key=value`.",
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        labels = super().to_internal_value(data)
        problems = label_problems(labels)
        if problems:
            raise serializers.ValidationError([message for _, message in problems])
        return labels
