"""Every word a person reads, and the code that renders it.

telegram/, email/ (subject, text, HTML), report/, web/ and common/ hold the templates, in French
and English; `templates.render` renders them (`render`, `render_error`, `localized`,
`message_context`), `templates.i18n` loads the Babel catalogs in `locale/`, and
`templates.i18n_tool` keeps those catalogs in step with the templates. Channels render through
here; the core (`consultation/`) never does.
"""
