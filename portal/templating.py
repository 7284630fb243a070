"""Django's template backend, rendering exactly as Django's does but leaving no reference cycle behind.

Rendering makes a RequestContext and pushes the view's context onto it; the pushed layer (a ContextDict) points back
at the context, and it is never popped. Each rendering thus left a cycle holding everything the page showed (a
list's rows, their flavors, images and hosts) until the garbage collector's next full collection, which then took
tens of milliseconds of some later request. Once a template is rendered, these layers let go of their context:
the page's objects are freed with the response, and what the test client keeps of a context still reads the same.
"""

from django.template import TemplateDoesNotExist
from django.template.backends.django import DjangoTemplates as DjangoBackend
from django.template.backends.django import Template as DjangoTemplate
from django.template.backends.django import reraise
from django.template.context import ContextDict, make_context


class Template(DjangoTemplate):
    def render(self, context=None, request=None):
        rendering = make_context(context, request, autoescape=self.backend.engine.autoescape)
        try:
            return self.template.render(rendering)
        except TemplateDoesNotExist as exc:
            reraise(exc, self.backend)
        finally:
            for layer in rendering.dicts:
                if isinstance(layer, ContextDict):
                    layer.context = None


class DjangoTemplates(DjangoBackend):
    def from_string(self, template_code):
        return Template(self.engine.from_string(template_code), self)

    def get_template(self, template_name):
        try:
            return Template(self.engine.get_template(template_name), self)
        except TemplateDoesNotExist as exc:
            reraise(exc, self)
