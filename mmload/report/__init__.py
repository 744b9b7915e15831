"""The reporter: run records and ltng reports in, Markdown / HTML / JSON / JUnit out.

``runs`` (run record -> tables), ``ltng`` (import), ``compare``, ``ceiling`` compute; ``views``
turns each into one :class:`~mmload.report.views.View` (the seam), ``plots`` draws its figures,
``formats`` renders a view as md / html (Jinja2 templates in ``templates/``) / json / junit.
All of that is pure; ``output`` and ``sources`` touch the disk. Percentiles come from
``mmload.hdr``. The CLI is ``mmload/commands/report.py``.
"""
