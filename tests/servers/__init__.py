"""Local servers that tests (and benchmarks) run in a thread: the Apify API's key-value store."""
