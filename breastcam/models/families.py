"""Imports every model-family module so that their ``@register`` decorators run."""

# Each import registers that family's builders; order is irrelevant.
