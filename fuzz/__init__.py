"""Coverage-guided fuzzing of wsanalyze with atheris (see fuzz/README.md).

Harnesses: ``fuzz.fuzz_capture`` (capture reader and packet parser),
``fuzz.fuzz_reassembly`` (TCP reassembler) and ``fuzz.fuzz_decoder``
(WebSocket connection decoder).  ``fuzz.run`` builds the seed corpora
(``fuzz.seeds``) and runs a harness for a bounded time.
"""
