"""Forms of the contact import pages: shape and presence checks only (the import services
decide what a file, a mapping or an acceptance may be)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms

from openline.console.forms import ConsoleForm


class ImportUploadForm(ConsoleForm):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8 (“CSV UTF-8” in Excel), comma, semicolon or tab between cells, "
        "column names in the first row; up to 50 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.tsv,.txt,text/csv"}),
    )


class ImportColumnsForm(ConsoleForm):
    """One choice per column of the file, named by its header."""

    def __init__(
        self,
        *args: Any,
        headers: Sequence[str],
        choices: list[tuple[str, str]],
        mapping: Sequence[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        for index, header in enumerate(headers):
            self.fields[f"column_{index}"] = forms.ChoiceField(
                label=header,
                choices=choices,
                required=False,
                initial=mapping[index] if index < len(mapping) else "",
            )

    def mapping(self) -> list[str]:
        return [self.cleaned_data[name] or "" for name in self.fields]


class ImportAcceptForm(ConsoleForm):
    consent_confirmed = forms.BooleanField(
        required=False,
        label="The people in this file agreed to receive texts from us, as its consent "
        "evidence column says. Their opt-ins are recorded with that evidence and my name.",
    )
