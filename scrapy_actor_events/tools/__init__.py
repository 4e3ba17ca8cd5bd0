"""The command line and everything only it uses: ``inspect``, ``clear``, ``rehearse``, the demo
and its site, the local events server, the download log reader, and the harness that runs a
crawl in a process and kills it (which the tests and the chaos runs use too).

Nothing outside ``tools/`` imports from here: the crawl never needs it.
"""
