"""Settings of the example project: Scrapy's defaults, and the line that enables checkpoints."""

BOT_NAME = "example"
SPIDER_MODULES = ["example.spiders"]
NEWSPIDER_MODULE = "example.spiders"

# The one line scrapy-actor-events needs.
EXTENSIONS = {"scrapy_actor_events.ActorEventsExtension": 100}
# Optional: the key the checkpoint is stored under (default: SCRAPY_STATE_<spider name>).
SPIDER_STATE_KEY = "SCRAPY_STATE_links"

ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 8
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
LOG_LEVEL = "INFO"
