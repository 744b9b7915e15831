"""The reporter: run records and ltng reports in, Markdown / HTML / JSON / JUnit out.

``runs`` (run record -> tables), ``ltng`` (import), ``compare``, ``ceiling``, ``hdr`` (exact
histogram merges and percentiles), ``plots`` and ``writers`` are pure; ``output`` and
``sources`` touch the disk. The CLI is ``mmload/commands/report.py``.
"""
