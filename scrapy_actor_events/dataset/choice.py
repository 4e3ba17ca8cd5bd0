"""Whether items go to a dataset: ``ACTOR_EVENTS_DATASET`` (auto, true, false), and why.

``auto`` is on in an Actor run (the platform, or ``apify run``, which sets the storage directory)
and off for a bare ``scrapy crawl``; it is off too when an item pipeline pushes items to the
dataset already (the Apify SDK's ``ActorDatasetPushPipeline``, or a subclass): each item would be
there twice. The SDK is not imported to find out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy.utils.conf import build_component_list
from scrapy.utils.misc import load_object

from .base import DatasetChoice

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

    from ..environment import ActorEnvironment

SDK_PIPELINE = "apify.scrapy.pipelines.actor_dataset_push.ActorDatasetPushPipeline"
#: How the SDK's pipeline may be named in ITEM_PIPELINES (``apply_apify_settings`` uses the short).
SDK_PIPELINE_PATHS = frozenset({SDK_PIPELINE, "apify.scrapy.pipelines.ActorDatasetPushPipeline"})


def _is_sdk_pipeline(component: Any) -> bool:
    if isinstance(component, str):
        if component in SDK_PIPELINE_PATHS:
            return True
        try:
            component = load_object(component)
        except Exception:  # Scrapy reports a pipeline it cannot load, in its own words
            return False
    mro = getattr(component, "__mro__", None) or type(component).__mro__
    return any(f"{c.__module__}.{c.__qualname__}" == SDK_PIPELINE for c in mro)


def dataset_pipeline(settings: BaseSettings) -> str | None:
    """The item pipeline in ``ITEM_PIPELINES`` that pushes items to the dataset, if any."""
    for component in build_component_list(
        settings.get_component_priority_dict_with_base("ITEM_PIPELINES")
    ):
        if _is_sdk_pipeline(component):
            return component if isinstance(component, str) else component.__qualname__
    return None


def decide(
    choice: DatasetChoice, env: ActorEnvironment, settings: BaseSettings
) -> tuple[bool, str]:
    """Whether items go to the dataset, and the reason, for one log line."""
    pipeline = dataset_pipeline(settings)
    if choice == DatasetChoice.FALSE:
        return False, "ACTOR_EVENTS_DATASET=false"
    if choice == DatasetChoice.TRUE:
        if pipeline is not None:
            return True, (
                f"ACTOR_EVENTS_DATASET=true, beside {pipeline} in ITEM_PIPELINES: every item goes"
                " to the dataset twice; remove one of them"
            )
        return True, "ACTOR_EVENTS_DATASET=true"
    if pipeline is not None:
        return False, (
            f"ACTOR_EVENTS_DATASET=auto and {pipeline} in ITEM_PIPELINES pushes items already (at"
            " least once); remove it and set ACTOR_EVENTS_DATASET=true for exactly once"
        )
    if env.actor_markers:
        return True, f"ACTOR_EVENTS_DATASET=auto in an Actor run ({', '.join(env.actor_markers)})"
    return False, (
        "ACTOR_EVENTS_DATASET=auto outside an Actor run (none of APIFY_IS_AT_HOME,"
        " ACTOR_DEFAULT_DATASET_ID, APIFY_LOCAL_STORAGE_DIR, CRAWLEE_STORAGE_DIR is set)"
    )
