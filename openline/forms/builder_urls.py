"""URLs of the forms app's builder pages (mounted by forms.urls under the "forms" namespace)."""

from __future__ import annotations

from django.urls import URLPattern, path

from openline.forms.views import builder

urlpatterns: list[URLPattern] = [
    path("", builder.form_list, name="list"),
    path("screener/", builder.screener_add, name="screener_add"),
    path("uses/", builder.uses, name="uses"),
    path("taxonomies/", builder.taxonomies, name="taxonomies"),
    path("taxonomies/<int:taxonomy_id>/", builder.taxonomy, name="taxonomy"),
    path("<int:form_id>/", builder.form_detail, name="detail"),
    path("<int:form_id>/archive/", builder.form_archive_toggle, name="archive"),
    path("<int:form_id>/sections/", builder.section_add, name="section_add"),
    path("<int:form_id>/sections/<slug:section_key>/", builder.section_action, name="section"),
    path("<int:form_id>/questions/new/", builder.field_add, name="field_add"),
    path("<int:form_id>/questions/<slug:field_key>/", builder.field_edit, name="field_edit"),
    path(
        "<int:form_id>/questions/<slug:field_key>/action/",
        builder.field_action,
        name="field_action",
    ),
]
