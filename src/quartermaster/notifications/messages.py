"""Message templates, per language (English and Tamil): the one catalogue of what we tell
people. WhatsApp sends the template by name with its parameters in `params` order (the same
templates are registered with Meta under these names and languages); SMS and the console
render the text here. Pure: no database access."""

from __future__ import annotations

from dataclasses import dataclass

from quartermaster.core.errors import Invalid

LANGUAGES = ("en", "ta")


@dataclass(frozen=True)
class Template:
    name: str
    # The parameters, in the order WhatsApp's template body numbers them ({{1}}, {{2}}, …).
    params: tuple[str, ...]
    texts: dict[str, str]


TEMPLATES = {
    template.name: template
    for template in (
        Template(
            "farmer_balance",
            ("name", "payable", "advance_outstanding", "last_settlement"),
            {
                "en": (
                    "Hello {name}. Payable to you: Rs {payable}. Advance outstanding:"
                    " Rs {advance_outstanding}. Last settlement: {last_settlement}."
                ),
                "ta": (
                    "வணக்கம் {name}. உங்களுக்குச் செலுத்த வேண்டிய தொகை: ₹{payable}."
                    " நிலுவையில் உள்ள முன்பணம்: ₹{advance_outstanding}."
                    " கடைசி கணக்கு முடிப்பு: {last_settlement}."
                ),
            },
        ),
        Template(
            "market_entry_recorded",
            ("name", "number", "flower", "qty", "amount"),
            {
                "en": "Hello {name}. Entry {number}: {qty} {flower}. Amount: {amount}.",
                "ta": "வணக்கம் {name}. பதிவு {number}: {qty} {flower}. தொகை: {amount}.",
            },
        ),
        Template(
            "market_advance_recorded",
            ("name", "number", "amount", "advance_outstanding"),
            {
                "en": (
                    "Hello {name}. Advance {number} of Rs {amount} given."
                    " Advance outstanding: Rs {advance_outstanding}."
                ),
                "ta": (
                    "வணக்கம் {name}. முன்பணம் {number}: ₹{amount} வழங்கப்பட்டது."
                    " நிலுவையில் உள்ள முன்பணம்: ₹{advance_outstanding}."
                ),
            },
        ),
        *(
            Template(
                f"market_settlement_{state}",
                ("name", "number", "period", "net"),
                {
                    "en": f"Hello {{name}}. Settlement {{number}} for {{period}} {en}."
                    " Net payable: Rs {net}.",
                    "ta": f"வணக்கம் {{name}}. {{period}} கணக்கு முடிப்பு {{number}} {ta}."
                    " நிகரத் தொகை: ₹{net}.",
                },
            )
            for state, en, ta in (
                ("generated", "is ready", "தயாராக உள்ளது"),
                ("approved", "is approved", "ஒப்புதல் பெற்றது"),
                ("paid", "is paid", "செலுத்தப்பட்டது"),
            )
        ),
        # An invoice by e-mail, its PDF attached (`invoice` is the invoice's id, for the PDF).
        Template(
            "invoice_issued",
            ("name", "number", "total", "invoice"),
            {
                "en": (
                    "Dear {name},\n\nPlease find attached invoice {number} for Rs {total}.\n\n"
                    "Thank you for your business."
                ),
                "ta": (
                    "அன்புள்ள {name},\n\nவிலைப்பட்டியல் {number} (₹{total}) இணைக்கப்பட்டுள்ளது.\n\nநன்றி."
                ),
            },
        ),
        # For producers' messages that need no template of their own yet (and for tests).
        Template("plain", ("text",), {"en": "{text}", "ta": "{text}"}),
    )
}

# Words the templates fill in for "none" (a farmer without a settlement yet).
NONE_YET = {"en": "none yet", "ta": "இதுவரை இல்லை"}
# An entry's amount before its slot has a rate.
AWAITING_RATE = {"en": "awaiting the rate", "ta": "விலை இன்னும் வரவில்லை"}
# A settlement's period and its one-line summary go into messages as parameters: they are
# written in the message's language too (an English "to" inside a Tamil message is not Tamil).
PERIOD = {"en": "{start} to {end}", "ta": "{start} முதல் {end} வரை"}
SETTLEMENT_STATES = {
    "en": {"draft": "draft", "approved": "approved", "paid": "paid"},
    "ta": {"draft": "வரைவு", "approved": "ஒப்புதல் பெற்றது", "paid": "செலுத்தப்பட்டது"},
}
SETTLEMENT_LINE = {
    "en": "{number}, {period}, {state}, net Rs {net}",
    "ta": "{number}, {period}, {state}, நிகரம் ₹{net}",
}


def period_words(start: str, end: str, language: str) -> str:
    return PERIOD[language].format(start=start, end=end)


def settlement_line(number: str, period: str, state: str, net: str, language: str) -> str:
    """A settlement in one line, e.g. "STL-000012, 2026-03-01 to 2026-03-15, paid, net Rs
    12400.00"; `period` as `period_words` gives it."""
    state_words = SETTLEMENT_STATES[language].get(state, state)
    return SETTLEMENT_LINE[language].format(
        number=number, period=period, state=state_words, net=net
    )


# E-mail subjects, per template and language; a template without one is sent by e-mail under
# the first line of its text.
SUBJECTS = {
    "invoice_issued": {"en": "Invoice {number}", "ta": "விலைப்பட்டியல் {number}"},
}


def email_parts(template: str, language: str, params: dict[str, str]) -> tuple[str, str]:
    """(subject, body) of the message as an e-mail."""
    body = render(template, language, params)
    subject = SUBJECTS.get(template, {}).get(language)
    if subject is None:
        return body.splitlines()[0][:150] if body else template, body
    return subject.format(**params), body


def clean_message(template: str, language: str, params: dict[str, str]) -> Template:
    """The template, if it exists in `language` and `params` name exactly its parameters."""
    found = TEMPLATES.get(template)
    if found is None:
        raise Invalid.field("template", "unknown template")
    if language not in found.texts:
        raise Invalid.field("language", f"one of {', '.join(sorted(found.texts))}")
    if set(params) != set(found.params) or not all(isinstance(v, str) for v in params.values()):
        raise Invalid.field("params", f"exactly {', '.join(found.params)}, as text")
    return found


def render(template: str, language: str, params: dict[str, str]) -> str:
    return clean_message(template, language, params).texts[language].format(**params)


def ordered_params(template: str, params: dict[str, str]) -> list[str]:
    return [params[name] for name in TEMPLATES[template].params]
