from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm

from tenants.models import Invitation, Membership
from tenants.roles import GRANTABLE_ROLES, Role

User = get_user_model()


class LoginForm(AuthenticationForm):
    username = forms.EmailField(label="E-mail address", widget=forms.EmailInput(attrs={"autofocus": True}))


class SignUpForm(forms.Form):
    full_name = forms.CharField(label="Your name", max_length=150)
    email = forms.EmailField(label="E-mail address", max_length=254)
    organisation = forms.CharField(
        label="Organisation", max_length=100, required=False, help_text="Leave empty to name it after yourself."
    )
    password = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput)

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"]).lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this e-mail address already exists. Log in instead.")
        return email

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            candidate = User(email=cleaned.get("email", ""), full_name=cleaned.get("full_name", ""))
            try:
                password_validation.validate_password(password, candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class InvitationSignUpForm(SignUpForm):
    """Sign-up from an invitation link: the address is the invited one and there is no organisation to name."""

    organisation = None

    def __init__(self, *args, invitation: Invitation, **kwargs):
        super().__init__(*args, **kwargs)
        email = self.fields["email"]
        email.initial = invitation.email
        email.disabled = True
        email.help_text = "The address the invitation was sent to."


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["full_name", "email"]

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"]).lower()
        if User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("Another account uses this e-mail address.")
        return email


class TenantForm(forms.Form):
    name = forms.CharField(label="Organisation name", max_length=100)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("The name cannot be blank.")
        return name


def _role_choices(actor: Membership) -> list[tuple[str, str]]:
    allowed = GRANTABLE_ROLES.get(actor.role, ())
    return [(value, label) for value, label in Role.choices if value in allowed]


class InvitationForm(forms.Form):
    email = forms.EmailField(label="E-mail address")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)

    def __init__(self, *args, actor: Membership, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = _role_choices(actor)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)

    def __init__(self, *args, actor: Membership, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = _role_choices(actor)


class TenantSwitchForm(forms.Form):
    tenant = forms.UUIDField()


class TwoFactorCodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=20,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True, "spellcheck": "false"}
        ),
    )


class TwoFactorEnrolForm(forms.Form):
    code = forms.CharField(
        label="Code from the app",
        max_length=10,
        help_text="After scanning, type the six digits the app shows.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )


class TwoFactorRequirementForm(forms.Form):
    required = forms.BooleanField(
        label="Require two-factor log-in of every member",
        required=False,
        help_text="Members without it are asked to turn it on before they can do anything else, and their API "
        "tokens are refused until they have.",
    )
