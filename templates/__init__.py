"""Every word a person reads: telegram/, email/ (subject, text, HTML), report/, common/, in
French and English. Rendered by `palabre.render.render`; translations live in `locale/`."""
