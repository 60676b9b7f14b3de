"""Adapters that let other frameworks run on llmfast (optional extras, imported only
when used; the core never imports them): ``llmfast.integrations.langchain`` and
``llmfast.integrations.pydantic_ai``."""
